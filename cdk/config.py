"""Deploy-time parameters, read from CDK context (``cdk.json`` or ``cdk deploy -c key=value``).

Context values given on the command line arrive as strings, so every key is parsed here, once, with a clear
error naming the key. ``cdk/README.md`` documents each key; :data:`CONTEXT_KEYS` is that table's source.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from constructs import Node

from workflows import names

# The Powertools for AWS Lambda (Python) v3 layer that AWS publishes in every commercial region. It carries
# powertools and pydantic v2 built for this runtime, which the handlers import (boto3 is in the runtime).
POWERTOOLS_LAYER_ACCOUNT = "017000801446"
POWERTOOLS_LAYER_NAME = "AWSLambdaPowertoolsPythonV3-python312-x86_64"
DEFAULT_POWERTOOLS_LAYER_VERSION = 27

_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Fargate's valid (cpu, memory MiB) pairs for the sizes a worker sensibly uses.
_FARGATE_MEMORY_BY_CPU: dict[int, range] = {
    512: range(1024, 4097, 1024),
    1024: range(2048, 8193, 1024),
    2048: range(4096, 16385, 1024),
    4096: range(8192, 30721, 1024),
}


class ConfigError(ValueError):
    """A context value is missing or malformed; the message names the key and what it expects."""


@dataclass(frozen=True)
class ContextKey:
    name: str
    default: str
    meaning: str


CONTEXT_KEYS: tuple[ContextKey, ...] = (
    ContextKey("inboundDomain", "(required)", "Domain SES receives mail for; projects are `{project}@{domain}`."),
    ContextKey("senderIdentity", "inboundDomain", "Verified SES identity (domain) replies are sent from."),
    ContextKey("createSenderIdentity", "false", "Create the SES domain identity (DKIM tokens in the outputs)."),
    ContextKey("previewDomain", "(none)", "Custom domain for previews; needs `previewCertificateArn`."),
    ContextKey("previewCertificateArn", "(none)", "ACM certificate (us-east-1) for `previewDomain`."),
    ContextKey("previewBaseUrl", "https://{domain}/previews", "Override the preview URL base the worker replies with."),
    ContextKey("workerCpu", "1024", "Fargate CPU units of a worker task (512, 1024, 2048, 4096)."),
    ContextKey("workerMemoryMiB", "2048", "Fargate memory of a worker task, valid for `workerCpu`."),
    ContextKey("warmPoolSize", "1", "Workers kept running to claim new project+user pairs at once (0 = spawn only)."),
    ContextKey("alertEmail", "(none)", "Address subscribed to the alarm topic (confirm the mail SNS sends)."),
    ContextKey("natGateways", "1", "NAT gateways for the workers' outbound traffic (git, agent API)."),
    ContextKey("logRetentionDays", "30", "Retention of every log group the app creates."),
    ContextKey("rawMailRetentionDays", "365", "Days raw inbound mail (`inbound/`) is kept before expiry."),
    ContextKey("powertoolsLayerVersion", str(DEFAULT_POWERTOOLS_LAYER_VERSION), "Version of the Powertools layer."),
    ContextKey("nag", "true", "Run the cdk-nag AwsSolutions and Serverless packs during synth."),
)


@dataclass(frozen=True)
class DeployConfig:
    inbound_domain: str
    sender_identity: str
    create_sender_identity: bool = False
    preview_domain: str | None = None
    preview_certificate_arn: str | None = None
    preview_base_url: str | None = None
    worker_cpu: int = 1024
    worker_memory_mib: int = 2048
    warm_pool_size: int = 1
    alert_email: str | None = None
    nat_gateways: int = 1
    log_retention_days: int = 30
    raw_mail_retention_days: int = 365
    powertools_layer_version: int = DEFAULT_POWERTOOLS_LAYER_VERSION
    nag: bool = True

    def __post_init__(self) -> None:
        for key, domain in (("inboundDomain", self.inbound_domain), ("senderIdentity", self.sender_identity)):
            if not _DOMAIN_RE.match(domain):
                raise ConfigError(f"context '{key}' must be a lower-case domain name, got {domain!r}")
        if self.preview_domain is not None:
            if not _DOMAIN_RE.match(self.preview_domain):
                raise ConfigError(f"context 'previewDomain' must be a domain name, got {self.preview_domain!r}")
            if not self.preview_certificate_arn:
                raise ConfigError(
                    "context 'previewDomain' needs 'previewCertificateArn' (an ACM certificate in us-east-1)"
                )
        if self.preview_base_url is not None and not self.preview_base_url.startswith("https://"):
            raise ConfigError(f"context 'previewBaseUrl' must start with https://, got {self.preview_base_url!r}")
        allowed_memory = _FARGATE_MEMORY_BY_CPU.get(self.worker_cpu)
        if allowed_memory is None:
            raise ConfigError(
                f"context 'workerCpu' must be one of {sorted(_FARGATE_MEMORY_BY_CPU)}, got {self.worker_cpu}"
            )
        if self.worker_memory_mib not in allowed_memory:
            raise ConfigError(
                f"context 'workerMemoryMiB' {self.worker_memory_mib} is not valid for workerCpu {self.worker_cpu} "
                f"(Fargate allows {allowed_memory.start}-{allowed_memory.stop - 1} in steps of 1024)"
            )
        if self.alert_email is not None and not _EMAIL_RE.match(self.alert_email):
            raise ConfigError(f"context 'alertEmail' must be an email address, got {self.alert_email!r}")
        for key, value, low in (
            ("warmPoolSize", self.warm_pool_size, 0),
            ("natGateways", self.nat_gateways, 1),  # the ASL starts workers without public IPs
            ("logRetentionDays", self.log_retention_days, 1),
            ("rawMailRetentionDays", self.raw_mail_retention_days, 1),
            ("powertoolsLayerVersion", self.powertools_layer_version, 1),
        ):
            if value < low:
                raise ConfigError(f"context '{key}' must be at least {low}, got {value}")

    @property
    def tuning(self) -> names.WorkflowTuning:
        return names.WorkflowTuning(warm_pool_size=self.warm_pool_size)

    @classmethod
    def from_node(cls, node: Node) -> DeployConfig:
        """Read every key of :data:`CONTEXT_KEYS` from the construct tree's context."""
        return cls.from_mapping({key.name: node.try_get_context(key.name) for key in CONTEXT_KEYS})

    @classmethod
    def from_mapping(cls, context: Mapping[str, Any]) -> DeployConfig:
        def get(key: str, parse: Callable[[str, Any], Any], default: Any = None) -> Any:
            value = context.get(key)
            if value is None or value == "":
                return default
            return parse(key, value)

        inbound_domain = get("inboundDomain", _text)
        if inbound_domain is None:
            raise ConfigError(
                "context 'inboundDomain' is required: cdk deploy -c inboundDomain=mail.example.com (see cdk/README.md)"
            )
        return cls(
            inbound_domain=inbound_domain.lower(),
            sender_identity=get("senderIdentity", _text, inbound_domain).lower(),
            create_sender_identity=get("createSenderIdentity", _flag, False),
            preview_domain=get("previewDomain", _text),
            preview_certificate_arn=get("previewCertificateArn", _text),
            preview_base_url=get("previewBaseUrl", _text),
            worker_cpu=get("workerCpu", _integer, 1024),
            worker_memory_mib=get("workerMemoryMiB", _integer, 2048),
            warm_pool_size=get("warmPoolSize", _integer, 1),
            alert_email=get("alertEmail", _text),
            nat_gateways=get("natGateways", _integer, 1),
            log_retention_days=get("logRetentionDays", _integer, 30),
            raw_mail_retention_days=get("rawMailRetentionDays", _integer, 365),
            powertools_layer_version=get("powertoolsLayerVersion", _integer, DEFAULT_POWERTOOLS_LAYER_VERSION),
            nag=get("nag", _flag, True),
        )


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"context '{key}' must be a string, got {value!r}")
    return value.strip()


def _integer(key: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"context '{key}' must be an integer, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"context '{key}' must be an integer, got {value!r}") from None


def _flag(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "1", "yes"}:
        return True
    if text in {"false", "0", "no"}:
        return False
    raise ConfigError(f"context '{key}' must be true or false, got {value!r}")
