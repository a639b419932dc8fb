"""cdk-nag: the rule packs the app is checked against, and the one way to acknowledge a finding.

Every acknowledgement names the rule (and, for wildcard findings, the exact resource or action) and says why;
``tests/infra`` fails on an unacknowledged error and on an acknowledgement without a reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from aws_cdk import Aspects, CfnElement, IAspect, Stack
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks, NagPackSuppression, NagSuppressions, RegexAppliesTo, ServerlessChecks
from constructs import IConstruct

from workflows import names

Finding = str | RegexAppliesTo

MIN_REASON_LENGTH = 20  # cdk-nag itself insists on 10; a reason should say why, not just "needed"


def packs() -> list[IAspect]:
    return [AwsSolutionsChecks(verbose=True), ServerlessChecks(verbose=True)]


def apply_packs(scope: IConstruct) -> None:
    for pack in packs():
        Aspects.of(scope).add(pack)


def acknowledge(
    construct: IConstruct,
    rule: str,
    reason: str,
    *,
    applies_to: Sequence[Finding] | None = None,
    children: bool = True,
) -> None:
    """Suppress ``rule`` on ``construct`` (and its children) with a written reason."""
    if len(reason) < MIN_REASON_LENGTH:
        raise ValueError(f"the reason for acknowledging {rule} must say why (got {reason!r})")
    NagSuppressions.add_resource_suppressions(
        construct,
        [NagPackSuppression(id=rule, reason=reason, applies_to=list(applies_to) if applies_to else None)],
        apply_to_children=children,
    )


def work_queues_finding() -> RegexAppliesTo:
    """The IAM5 finding for ``arn:...:sqs:<region>:<account>:webordinary-work-*``, however region/account render."""
    prefix = re.sub(r"[^A-Za-z0-9_]", lambda m: "\\" + m.group(0), names.WORK_QUEUE_PREFIX)
    # Partition, region and account render as values or as <AWS::...> pseudo parameters (which contain colons).
    part = "(<AWS::[A-Za-z]+>|[^:<>]+)"
    return RegexAppliesTo(regex=f"/^Resource::arn:{part}:sqs:{part}:{part}:{prefix}\\*$/")


def objects_finding(bucket: s3.IBucket, prefix: str) -> str:
    """The IAM5 finding for ``<bucket ARN>/{prefix}*``."""
    resource = bucket.node.default_child
    assert isinstance(resource, CfnElement)
    return f"Resource::<{Stack.of(bucket).get_logical_id(resource)}.Arn>/{prefix}*"
