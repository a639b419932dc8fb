"""Context keys: parsed from the strings `cdk deploy -c` delivers, rejected with the key's name when wrong."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as core
import pytest
from aws_cdk.assertions import Annotations, Match

from cdk.app import build_app
from cdk.config import CONTEXT_KEYS, ConfigError, DeployConfig
from cdk.stacks.webordinary import retention
from tests.infra.conftest import REPO_ROOT, deploy_context, synth_or_explain
from workflows import names

pytestmark = pytest.mark.infra


def test_strings_from_the_command_line_are_parsed() -> None:
    config = DeployConfig.from_mapping(
        {
            "inboundDomain": "Mail.Example.com",
            "warmPoolSize": "0",
            "nag": "false",
            "workerCpu": "2048",
            "workerMemoryMiB": "4096",
        }
    )
    assert config.inbound_domain == "mail.example.com"
    assert config.sender_identity == "mail.example.com"
    assert config.warm_pool_size == 0
    assert config.tuning.warm_pool_size == 0
    assert config.nag is False
    assert (config.worker_cpu, config.worker_memory_mib) == (2048, 4096)


@pytest.mark.parametrize(
    ("context", "key"),
    [
        ({}, "inboundDomain"),
        ({"inboundDomain": "not a domain"}, "inboundDomain"),
        ({"inboundDomain": "mail.example.com", "workerCpu": "1024", "workerMemoryMiB": "512"}, "workerMemoryMiB"),
        ({"inboundDomain": "mail.example.com", "workerCpu": "3"}, "workerCpu"),
        ({"inboundDomain": "mail.example.com", "warmPoolSize": "-1"}, "warmPoolSize"),
        ({"inboundDomain": "mail.example.com", "warmPoolSize": "two"}, "warmPoolSize"),
        ({"inboundDomain": "mail.example.com", "previewDomain": "previews.example.com"}, "previewDomain"),
        ({"inboundDomain": "mail.example.com", "alertEmail": "ops"}, "alertEmail"),
        ({"inboundDomain": "mail.example.com", "nag": "maybe"}, "nag"),
    ],
)
def test_bad_context_names_the_key(context: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        DeployConfig.from_mapping(context)


def test_every_documented_key_is_read_and_cdk_json_sets_no_deployment_values() -> None:
    documented = {key.name for key in CONTEXT_KEYS}
    readme = (REPO_ROOT / "cdk" / "README.md").read_text()
    for name in documented:
        assert f"`{name}`" in readme, f"{name} is not documented in cdk/README.md"
    # cdk.json carries feature flags only: deployment values belong to the operator's -c or cdk.context.json.
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    assert not documented & context.keys()


def test_log_retention_rounds_up_to_a_period_cloudwatch_accepts() -> None:
    assert retention(30).name == "ONE_MONTH"
    assert retention(31).name == "TWO_MONTHS"
    assert retention(1).name == "ONE_DAY"
    assert retention(100_000).name == "TEN_YEARS"


def test_a_region_agnostic_synth_passes_nag_and_decides_the_ses_domain_at_deploy_time(tmp_path: Path) -> None:
    app, stack = build_app(deploy_context(), outdir=str(tmp_path), env=core.Environment())
    synth_or_explain(app, tmp_path)
    errors = Annotations.from_stack(stack).find_error("*", Match.string_like_regexp(".*"))
    assert not errors, [f"{e.id}: {e.entry.data}" for e in errors]
    template = json.loads((tmp_path / "WebOrdinary.template.json").read_text())
    (reply,) = [
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"]["Handler"] == names.REPLY_FUNCTION.handler
    ]
    domain = reply["Properties"]["Environment"]["Variables"][names.REPLY_FUNCTION.env_ses_domain]
    assert "Fn::If" in domain
    (condition,) = template["Conditions"].values()
    assert condition == {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}
    assert stack.region.startswith("${Token")


def test_a_preview_domain_gives_every_preview_its_own_host(tmp_path: Path) -> None:
    certificate = "arn:aws:acm:us-east-1:123456789012:certificate/0f0e0d0c-1111-2222-3333-444455556666"
    context = deploy_context(previewDomain="previews.example.com", previewCertificateArn=certificate)
    app, _ = build_app(context, outdir=str(tmp_path), env=core.Environment(account="123456789012", region="us-east-1"))
    synth_or_explain(app, tmp_path)
    template = json.loads((tmp_path / "WebOrdinary.template.json").read_text())
    resources = template["Resources"].values()
    (distribution,) = [r for r in resources if r["Type"] == "AWS::CloudFront::Distribution"]
    assert distribution["Properties"]["DistributionConfig"]["Aliases"] == ["*.previews.example.com"]
    (function,) = [r for r in resources if r["Type"] == "AWS::CloudFront::Function"]
    assert "var DOMAIN = 'previews.example.com';" in function["Properties"]["FunctionCode"]
    (task,) = [r for r in resources if r["Type"] == "AWS::ECS::TaskDefinition"]
    env = {e["Name"]: e["Value"] for e in task["Properties"]["ContainerDefinitions"][0]["Environment"]}
    assert env["WEBORDINARY_PREVIEW_ORIGIN"] == "https://{label}.previews.example.com"
    assert env["WEBORDINARY_SITE_ORIGIN"] == "https://live-{label}.previews.example.com"  # what PUBLISH deploys
