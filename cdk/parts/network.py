"""The workers' network: private subnets in two AZs with NAT egress, and a security group with no inbound rules."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct


class Network(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, nat_gateways: int, log_retention: logs.RetentionDays
    ) -> None:
        super().__init__(scope, construct_id)
        # Two AZs because the ASL's ecs:runTask names exactly two subnets (WorkerSubnet1/2).
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="workers", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=20),
            ],
            # S3 and DynamoDB through free gateway endpoints: the bulk of worker traffic never pays for NAT.
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
                "DynamoDB": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.DYNAMODB),
            },
        )
        flow_log_group = logs.LogGroup(self, "FlowLogs", retention=log_retention)
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        self.worker_subnets = self.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        # Workers call out (git, the agent's API, AWS) and nothing calls in: no ingress rules at all.
        self.worker_security_group = ec2.SecurityGroup(
            self,
            "WorkerSecurityGroup",
            vpc=self.vpc,
            description="WebOrdinary workers: outbound only",
            allow_all_outbound=True,
        )
