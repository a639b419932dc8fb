"""CloudFront in front of the private preview bucket (origin access control: only this distribution reads it)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk.parts import nag
from cdk.parts.functions import LambdaKit
from workflows import names, previews
from workflows.settings import PreviewMissSettings

# Viewer request: a preview host ({thread}-{project}.{domain} or {commit7}-{project}.{domain}), or a live
# site's (live-{project}.{domain}, what PUBLISH deploys under sites/{project}/), to its bucket prefix, and
# directory URLs (`/about/`, `/about`) to their index.html: the mapping workflows/previews.py defines and the
# embedded stack's preview server implements (tests/unit/test_previews_function.py runs this code under Node
# against workflows.previews). Any other host keeps the path (previews under /previews/...).
PREVIEW_FUNCTION = """\
var DOMAIN = '__DOMAIN__';
var LABEL = /^([2-9a-hjkmnp-tv-z]{8}|[0-9a-f]{7})-([a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?)$/;
var LIVE = /^live-([a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?)$/;
function handler(event) {
  var request = event.request;
  var uri = request.uri;
  if (uri.endsWith('/')) {
    uri = uri + 'index.html';
  } else if (uri.split('/').pop().indexOf('.') === -1) {
    uri = uri + '/index.html';
  }
  var host = request.headers.host ? request.headers.host.value.toLowerCase() : '';
  if (DOMAIN && host.length > DOMAIN.length + 1 && host.endsWith('.' + DOMAIN)) {
    var label = host.slice(0, host.length - DOMAIN.length - 1);
    var live = LIVE.exec(label);
    var match = live ? null : LABEL.exec(label);
    if ((!live && !match) || uri.indexOf('/../') !== -1) {
      return { statusCode: 404, statusDescription: 'Not Found' };
    }
    var prefix;
    if (live) {
      prefix = '/sites/' + live[1];
    } else {
      var id = match[1];
      var project = match[2];
      prefix = id.length === 8 ? '/previews/' + project + '/' + id : '/previews/' + project + '/commits/' + id;
    }
    uri = prefix + uri;
  }
  request.uri = uri;
  return request;
}
"""


def preview_function_code(domain: str | None) -> str:
    return PREVIEW_FUNCTION.replace("__DOMAIN__", (domain or "").lower())


class Previews(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        access_logs: s3.IBucket,
        domain: str | None,
        certificate_arn: str | None,
        base_url: str | None,
        kit: LambdaKit,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        # What answers a path S3 does not have: the site's own 404.html (lambdas/preview_misses), as the
        # embedded stack's preview server does. CloudFront falls back to it on S3's 403/404 only, so every file
        # that exists is served straight from S3.
        self.misses = kit.function(
            self,
            "NotFoundPages",
            handler=names.PREVIEW_MISSES_HANDLER,
            service="webordinary-preview-misses",
            description="WebOrdinary: a preview's or live site's own 404 page for a path it does not have",
            environment={PreviewMissSettings.env_map()["preview_bucket"]: bucket.bucket_name},
            log_retention=log_retention,
            timeout=Duration.seconds(10),
            memory_mib=256,
        )
        # Only the sites' 404 pages (previews/{project}/{thread or commits/c7}/404.html, sites/{project}/404.html)
        # and what a change's own preview is made of: its manifest and the blobs it names.
        readable = [
            bucket.arn_for_objects(f"{names.PREVIEW_PREFIX}*/{previews.NOT_FOUND_PAGE}"),
            bucket.arn_for_objects(f"{names.SITE_PREFIX}*/{previews.NOT_FOUND_PAGE}"),
            bucket.arn_for_objects(f"{names.MANIFEST_PREFIX}*"),
            bucket.arn_for_objects(f"{names.BLOB_PREFIX}*"),
        ]
        self.misses.add_to_role_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=readable))
        misses_url = self.misses.add_function_url(auth_type=lambda_.FunctionUrlAuthType.AWS_IAM)
        nag.acknowledge(
            self.misses,
            "AwsSolutions-IAM5",
            "Reads each preview's and live site's 404.html, and the changes' manifests and content blobs, one "
            "key per site, change or content, known only at run time.",
            applies_to=[
                *(
                    f"{nag.objects_finding(bucket, prefix)}/{previews.NOT_FOUND_PAGE}"
                    for prefix in (names.PREVIEW_PREFIX, names.SITE_PREFIX)
                ),
                nag.objects_finding(bucket, names.MANIFEST_PREFIX),
                nag.objects_finding(bucket, names.BLOB_PREFIX),
            ],
        )
        nag.acknowledge(
            self.misses,
            "Serverless-LambdaDLQ",
            "Invoked synchronously through its function URL by CloudFront; a dead-letter queue only applies to "
            "asynchronous invocations.",
            children=False,
        )
        index_rewrite = cloudfront.Function(
            self,
            "IndexRewrite",
            code=cloudfront.FunctionCode.from_inline(preview_function_code(domain)),
            runtime=cloudfront.FunctionRuntime.JS_2_0,
            comment="WebOrdinary previews: each preview host to its prefix; directory URLs to index.html",
        )
        # The worker uploads with Cache-Control: no-cache (a preview changes under the same URL with every
        # message); honour it, and cache anything else briefly.
        cache_policy = cloudfront.CachePolicy(
            self,
            "CachePolicy",
            comment="WebOrdinary previews: honour origin Cache-Control, short default",
            min_ttl=Duration.seconds(0),
            default_ttl=Duration.minutes(1),
            max_ttl=Duration.hours(1),
            enable_accept_encoding_gzip=True,
            enable_accept_encoding_brotli=True,
        )
        certificate = (
            acm.Certificate.from_certificate_arn(self, "Certificate", certificate_arn) if certificate_arn else None
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="WebOrdinary previews",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.OriginGroup(
                    primary_origin=origins.S3BucketOrigin.with_origin_access_control(bucket),
                    fallback_origin=origins.FunctionUrlOrigin.with_origin_access_control(misses_url),
                    # S3 answers 403 for a missing object when the reader may not list the bucket.
                    fallback_status_codes=[403, 404],
                ),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cache_policy,
                response_headers_policy=cloudfront.ResponseHeadersPolicy.SECURITY_HEADERS,
                function_associations=[
                    cloudfront.FunctionAssociation(
                        function=index_rewrite, event_type=cloudfront.FunctionEventType.VIEWER_REQUEST
                    )
                ],
            ),
            # Every preview at its own host: {thread}-{project}.{domain}, {commit7}-{project}.{domain}.
            domain_names=[f"*.{domain}"] if domain else None,
            certificate=certificate,
            # Only a custom certificate can raise the TLS floor; the default one is fixed by CloudFront (CFR4 below).
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021 if certificate else None,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            enable_logging=True,
            log_bucket=access_logs,
            log_file_prefix="cloudfront/",
        )
        self.domain_name = domain or self.distribution.distribution_domain_name
        # The worker replies with {base}/{project}/{thread}/index.html (WorkerSettings.preview_url); objects live
        # under previews/{project}/{thread}/, which CloudFront serves at the same path.
        self.base_url = base_url or f"https://{self.domain_name}/{names.PREVIEW_PREFIX.rstrip('/')}"
        # With a preview domain, each preview at its own origin (root-absolute links work); without one, paths.
        self.origin_template = f"https://{previews.LABEL_PLACEHOLDER}.{domain}" if domain else ""
        # The live sites PUBLISH deploys: live-{project}.{domain} ({label} = the project id); none without a domain.
        live = previews.LIVE_LABEL_PREFIX + previews.LABEL_PLACEHOLDER
        self.site_template = f"https://{live}.{domain}" if domain else ""

        nag.acknowledge(
            self.distribution,
            "AwsSolutions-CFR1",
            "Previews are shown to site owners wherever they are; there is no audience to restrict by country.",
        )
        nag.acknowledge(
            self.distribution,
            "AwsSolutions-CFR2",
            "Previews are static files read by a handful of people per thread; a WAF web ACL would cost more than "
            "the traffic and there is no application behind the distribution to protect.",
        )
        if certificate is None:
            nag.acknowledge(
                self.distribution,
                "AwsSolutions-CFR4",
                "Without previewDomain the distribution uses the default *.cloudfront.net certificate, whose "
                "security policy CloudFront fixes at TLSv1; set previewDomain/previewCertificateArn for TLSv1.2.",
            )
