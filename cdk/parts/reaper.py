"""The reaper: ECS reports a worker task STOPPED -> fail the command it held and release its project+user.

Without it a crashed worker is noticed only when the waiting execution's heartbeat times out, and its
ownership row sends the next messages of that pair to a queue nobody polls until then
(``workflows/reaper.py``, ``lambdas/reaper/handler.py``).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cdk.parts.functions import LambdaKit
from cdk.parts.messaging import DEAD_LETTER_RETENTION, secure_queue, terminal_dead_letter_queue
from cdk.parts.state import State
from workflows import names

REAPER_HANDLER = "lambdas.reaper.handler.handler"


class Reaper(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        kit: LambdaKit,
        cluster: ecs.ICluster,
        state: State,
        state_machine: sfn.IStateMachine,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        # Events the reaper could not handle (after the function's own and EventBridge's retries) wait here.
        self.dead_letter_queue = secure_queue(self, "ReaperDeadLetterQueue", retention_period=DEAD_LETTER_RETENTION)
        terminal_dead_letter_queue(self.dead_letter_queue)
        ownership = state.table(names.OWNERSHIP_TABLE)
        self.function = kit.function(
            self,
            "Reaper",
            handler=REAPER_HANDLER,
            service="webordinary-reaper",  # as lambdas/reaper/handler.py logs it
            description="WebOrdinary: free what a stopped worker task held",
            environment={names.OWNERSHIP_TABLE.env: ownership.table_name},
            log_retention=log_retention,
            timeout=Duration.seconds(30),
            memory_mib=256,
            dead_letter_queue=self.dead_letter_queue,
        )
        # Scan for the stopped worker's rows, then delete them conditionally; nothing else.
        ownership.grant(self.function, "dynamodb:Scan", "dynamodb:DeleteItem")
        state_machine.grant(self.function, "states:SendTaskFailure")
        self.rule = events.Rule(
            self,
            "WorkerStopped",
            description="A WebOrdinary worker task stopped",
            event_pattern=events.EventPattern(
                source=["aws.ecs"],
                detail_type=["ECS Task State Change"],
                detail={"clusterArn": [cluster.cluster_arn], "lastStatus": ["STOPPED"]},
            ),
        )
        self.rule.add_target(
            targets.LambdaFunction(
                self.function,
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=4,
                max_event_age=Duration.hours(1),
            )
        )
