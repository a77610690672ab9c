"""Local stand-ins for cloud endpoints: what AWS's STS, ECS container endpoint and CloudWatch, and
Google's metadata server answer, on loopback. Each one asserts what the real one checks."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials


def verify_sigv4(request: web.Request, body: bytes, secret: str) -> bool:
    """Server side of SigV4: rebuild the signature from what arrived on the wire, with the
    secret the server knows for the access key the request names."""
    authorization = request.headers.get("Authorization", "")
    if not authorization.startswith("AWS4-HMAC-SHA256 "):
        return False
    fields = dict(
        part.strip().split("=", 1)
        for part in authorization.removeprefix("AWS4-HMAC-SHA256 ").split(",")
    )
    access_key, date, region, service, _ = fields["Credential"].split("/")
    signed = fields["SignedHeaders"].split(";")
    headers = {name: request.headers[name] for name in signed if name != "host"}
    rebuilt = AWSRequest(method=request.method, url=str(request.url), data=body, headers=headers)
    rebuilt.context["timestamp"] = request.headers["X-Amz-Date"]
    token = request.headers.get("X-Amz-Security-Token")
    signer = SigV4Auth(ReadOnlyCredentials(access_key, secret, token), service, region)
    signer._modify_request_before_signing(rebuilt)
    canonical = signer.canonical_request(rebuilt)
    signature = signer.signature(signer.string_to_sign(rebuilt, canonical), rebuilt)
    return bool(signature == fields["Signature"] and date == request.headers["X-Amz-Date"][:8])


def sts_app(
    role_arn: str, web_token: str, issued: dict[str, str], calls: list[str]
) -> web.Application:
    """STS AssumeRoleWithWebIdentity (query protocol, XML answer)."""

    async def assume(request: web.Request) -> web.Response:
        form = await request.post()
        calls.append(str(form.get("Action")))
        if form.get("Action") != "AssumeRoleWithWebIdentity" or form.get("RoleArn") != role_arn:
            return web.Response(status=400, text="<ErrorResponse><Error><Code>InvalidAction"
                                                 "</Code></Error></ErrorResponse>")  # fmt: skip
        if form.get("WebIdentityToken") != web_token:
            return web.Response(status=400, text=(
                "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code>"
                "<Message>bad token</Message></Error></ErrorResponse>"
            ), content_type="text/xml")  # fmt: skip
        xml = f"""<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>{issued["access_key"]}</AccessKeyId>
      <SecretAccessKey>{issued["secret_key"]}</SecretAccessKey>
      <SessionToken>{issued["token"]}</SessionToken>
      <Expiration>2099-01-01T00:00:00Z</Expiration>
    </Credentials>
    <SubjectFromWebIdentityToken>system:serviceaccount:flagger:flagger</SubjectFromWebIdentityToken>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/flagger/session</Arn>
      <AssumedRoleId>AROAEXAMPLE:session</AssumedRoleId>
    </AssumedRoleUser>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"""
        return web.Response(text=xml, content_type="text/xml")

    app = web.Application()
    app.router.add_post("/", assume)
    return app


def ecs_app(authorization: str, issued: dict[str, str], calls: list[str]) -> web.Application:
    """The ECS/EKS container credentials endpoint (JSON, Authorization token checked)."""

    async def credentials(request: web.Request) -> web.Response:
        calls.append(request.path)
        if request.headers.get("Authorization") != authorization:
            return web.json_response({"code": "Forbidden"}, status=403)
        return web.json_response(
            {
                "AccessKeyId": issued["access_key"],
                "SecretAccessKey": issued["secret_key"],
                "Token": issued["token"],
                "Expiration": "2099-01-01T00:00:00Z",
            }
        )

    app = web.Application()
    app.router.add_get("/v2/credentials/pod", credentials)
    return app


def cloudwatch_app(secret: str, token: str, seen: list[dict[str, Any]]) -> web.Application:
    """CloudWatch GetMetricData that refuses anything not signed with `secret` and `token`."""

    async def api(request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("X-Amz-Security-Token") != token:
            return web.json_response({"__type": "UnrecognizedClientException"}, status=403)
        if not verify_sigv4(request, body, secret):
            return web.json_response({"__type": "SignatureDoesNotMatch"}, status=403)
        seen.append(dict(request.headers))
        return web.json_response({"MetricDataResults": [{"Id": "e1", "Values": [0.25]}]})

    app = web.Application()
    app.router.add_post("/", api)
    return app


def gce_metadata_app(token: str, calls: list[str]) -> web.Application:
    """The GCE/GKE metadata server: every request must carry `Metadata-Flavor: Google`."""
    flavor = {"Metadata-Flavor": "Google"}

    async def handle(request: web.Request) -> web.Response:
        calls.append(request.path)
        if request.headers.get("Metadata-Flavor") != "Google":
            return web.Response(status=403, text="missing Metadata-Flavor", headers=flavor)
        path = request.path.removeprefix("/computeMetadata/v1/")
        if path in ("", "/"):
            return web.Response(text="", headers=flavor)
        if path == "project/project-id":
            return web.Response(text="my-project", headers=flavor)
        if path == "instance/service-accounts/default/":
            return web.json_response(
                {"email": "flagger@my-project.iam.gserviceaccount.com", "aliases": ["default"],
                 "scopes": ["https://www.googleapis.com/auth/monitoring.read"]},
                headers=flavor,
            )  # fmt: skip
        if path == "instance/service-accounts/default/token":
            return web.json_response(
                {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}, headers=flavor
            )
        return web.Response(status=404, text=f"no {path}", headers=flavor)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    return app


def monitoring_app(token: str, seen: list[str]) -> web.Application:
    """Cloud Monitoring timeSeries.query that refuses a request without the expected token."""

    async def query(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {token}":
            return web.json_response({"error": {"status": "UNAUTHENTICATED"}}, status=401)
        seen.append((await request.json())["query"])
        return web.json_response(
            {"timeSeriesData": [{"pointData": [{"values": [{"doubleValue": 0.5}]}]}]}
        )

    app = web.Application()
    app.router.add_post("/v3/projects/{project}/timeSeries:query", query)
    return app
