"""CloudFront's fallback origin for previews and live sites (a Lambda function URL behind origin access
control): S3 had no object for the path, so answer from the change's manifest, or with the site's own 404
page (:func:`workflows.adapters.preview_misses.answer`)."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import unquote

from pydantic import BaseModel

from lambdas.observability import powertools
from workflows.adapters.aws import client
from workflows.adapters.preview_misses import answer, s3_getter
from workflows.settings import PreviewMissSettings

logger, tracer, metrics = powertools("webordinary-preview-misses")
MAX_INLINE_BYTES = 4 * 1024 * 1024


class MissRequest(BaseModel):
    """The part of a function URL request (payload 2.0) this needs: the path CloudFront asked S3 for."""

    rawPath: str = "/"


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = MissRequest.model_validate(event)
    key = unquote(request.rawPath).lstrip("/")
    bucket = PreviewMissSettings.from_env().preview_bucket
    page = answer(key, s3_getter(client("s3"), bucket))
    logger.info("preview miss", extra={"key": key[:300], "status": page.status, "source": page.source_key})
    if len(page.body) > MAX_INLINE_BYTES and page.source_key:
        # Past what a function URL may return (6 MB, base64): the browser fetches the blob from S3 itself.
        location = client("s3").generate_presigned_url(
            "get_object",
            Params={"Bucket": bucket, "Key": page.source_key, "ResponseContentType": page.content_type},
            ExpiresIn=3600,
        )
        return {"statusCode": 302, "headers": {"Location": location, "Cache-Control": "no-store"}, "body": ""}
    return {
        "statusCode": page.status,
        "headers": {"Content-Type": page.content_type, "Cache-Control": page.cache_control},
        "body": base64.b64encode(page.body).decode("ascii"),
        "isBase64Encoded": True,
    }
