"""Lazily created boto3 clients. Endpoint, region and credentials come from the standard AWS environment
(``AWS_ENDPOINT_URL`` points them at the embedded stack), so the same code talks to AWS or to moto."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=70)


@cache
def client(service: str) -> Any:
    return boto3.session.Session().client(service, config=_CONFIG)


def reset_clients() -> None:
    """Forget cached clients (tests and the embedded stack change the environment between runs)."""
    client.cache_clear()
