"""CloudFront's fallback origin for previews and live sites (a Lambda function URL behind origin access
control): S3 had no object for the path, so answer with the site's own 404 page
(:func:`workflows.preview_misses.not_found`)."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import unquote

from pydantic import BaseModel

from lambdas.observability import powertools
from workflows.aws import client
from workflows.preview_misses import not_found, s3_getter
from workflows.settings import PreviewMissSettings

logger, tracer, metrics = powertools("webordinary-preview-misses")


class MissRequest(BaseModel):
    """The part of a function URL request (payload 2.0) this needs: the path CloudFront asked S3 for."""

    rawPath: str = "/"


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = MissRequest.model_validate(event)
    key = unquote(request.rawPath).lstrip("/")
    page = not_found(key, s3_getter(client("s3"), PreviewMissSettings.from_env().preview_bucket))
    logger.info("preview miss", extra={"key": key[:300], "sitePage": page.content_type.startswith("text/html")})
    return {
        "statusCode": page.status,
        "headers": {"Content-Type": page.content_type, "Cache-Control": page.cache_control},
        "body": base64.b64encode(page.body).decode("ascii"),
        "isBase64Encoded": True,
    }
