"""Cloud credentials through the standard chains, end to end on loopback: IRSA-style web identity
through a local STS, the ECS/EKS container endpoint, the GKE/GCE metadata server and
GOOGLE_APPLICATION_CREDENTIALS; every request to the metrics API must be signed or authorized."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from coalmine.analysis.providers import ProviderConfigError, ProviderError, provider_for

from .cloud_fakes import cloudwatch_app, ecs_app, gce_metadata_app, monitoring_app, sts_app
from .conftest import Serve, context, spec

QUERY = '[{"Id": "e1", "Expression": "m1 / m2"}]'
ROLE = "arn:aws:iam::123456789012:role/flagger"


@pytest.fixture
def aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No ambient AWS credentials: no keys, no config files, no instance metadata."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    return monkeypatch


async def test_cloudwatch_assumes_the_irsa_role_through_sts_and_signs_with_its_keys(
    aws_environment: pytest.MonkeyPatch,
    tmp_path: Path,
    serve: Serve,
    session: aiohttp.ClientSession,
) -> None:
    issued = {"access_key": "ASIAWEBIDENTITY", "secret_key": "web-secret", "token": "web-token"}
    sts_calls: list[str] = []
    seen: list[dict[str, Any]] = []
    token_file = tmp_path / "token"
    token_file.write_text("eyJhbGciOiJSUzI1NiJ9.projected-service-account-token")
    sts = await serve(sts_app(ROLE, token_file.read_text(), issued, sts_calls))
    cloudwatch = await serve(cloudwatch_app(issued["secret_key"], issued["token"], seen))
    aws_environment.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
    aws_environment.setenv("AWS_ROLE_ARN", ROLE)
    aws_environment.setenv("AWS_ENDPOINT_URL_STS", sts)

    for _ in range(2):
        provider = provider_for(
            spec(type="cloudwatch", region="eu-west-1", address=cloudwatch), {}, context(session)
        )
        assert await provider.run_query(QUERY) == 0.25
    assert sts_calls == ["AssumeRoleWithWebIdentity"]  # resolved once, kept until it expires
    assert "Credential=ASIAWEBIDENTITY/" in seen[0]["Authorization"]


async def test_a_refused_web_identity_token_is_a_provider_error(
    aws_environment: pytest.MonkeyPatch,
    tmp_path: Path,
    serve: Serve,
    session: aiohttp.ClientSession,
) -> None:
    issued = {"access_key": "ASIA", "secret_key": "s", "token": "t"}
    token_file = tmp_path / "token"
    token_file.write_text("stale-token")
    sts = await serve(sts_app(ROLE, "the-valid-token", issued, []))
    aws_environment.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
    aws_environment.setenv("AWS_ROLE_ARN", ROLE)
    aws_environment.setenv("AWS_ENDPOINT_URL_STS", sts)
    provider = provider_for(
        spec(type="cloudwatch", region="eu-west-1", address="http://127.0.0.1:9"),
        {},
        context(session),
    )
    with pytest.raises(
        ProviderError, match=r"error getting AWS credentials: .*InvalidIdentityToken"
    ):
        await provider.run_query(QUERY)


async def test_cloudwatch_uses_the_container_credentials_endpoint(
    aws_environment: pytest.MonkeyPatch, serve: Serve, session: aiohttp.ClientSession
) -> None:
    issued = {"access_key": "ASIACONTAINER", "secret_key": "pod-secret", "token": "pod-token"}
    calls: list[str] = []
    seen: list[dict[str, Any]] = []
    endpoint = await serve(ecs_app("pod-identity-token", issued, calls))
    cloudwatch = await serve(cloudwatch_app(issued["secret_key"], issued["token"], seen))
    aws_environment.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", f"{endpoint}/v2/credentials/pod")
    aws_environment.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "pod-identity-token")

    provider = provider_for(
        spec(type="cloudwatch", region="eu-west-1", address=cloudwatch), {}, context(session)
    )
    assert await provider.run_query(QUERY) == 0.25
    assert calls == ["/v2/credentials/pod"]
    assert "Credential=ASIACONTAINER/20" in seen[0]["Authorization"]


async def test_cloudwatch_without_any_credentials_names_the_ways_to_give_them(
    aws_environment: pytest.MonkeyPatch, session: aiohttp.ClientSession
) -> None:
    provider = provider_for(
        spec(type="cloudwatch", region="eu-west-1", address="http://127.0.0.1:9"),
        {},
        context(session),
    )
    with pytest.raises(ProviderConfigError, match=r"no AWS credentials: .*IRSA"):
        await provider.run_query(QUERY)


@pytest.mark.parametrize(
    ("provider_type", "modules", "extra"),
    [("cloudwatch", ("botocore",), "coalmine[aws]"), ("stackdriver", ("google",), "coalmine[gcp]")],
)
def test_a_missing_extra_is_named_in_the_error(
    provider_type: str,
    modules: tuple[str, ...],
    extra: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in modules:
            monkeypatch.delitem(sys.modules, name)
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)
    fields: dict[str, Any] = {"type": provider_type, "region": "eu-west-1"}
    with pytest.raises(
        ProviderConfigError, match=f"install {extra.replace('[', '.').replace(']', '.')}"
    ):
        provider_for(spec(**fields), {"project": b"p"}, context(None))  # type: ignore[arg-type]


def _service_account_key(token_uri: str) -> dict[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": "my-project",
        "client_email": "flagger@my-project.iam.gserviceaccount.com",
        "private_key_id": "key-2",
        "private_key": pem,
        "token_uri": token_uri,
    }


async def test_stackdriver_reads_google_application_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, serve: Serve, session: aiohttp.ClientSession
) -> None:
    from aiohttp import web

    grants: list[str] = []

    async def token(request: web.Request) -> web.Response:
        grants.append(str((await request.post())["grant_type"]))
        return web.json_response({"access_token": "ya29.file", "expires_in": 3600})

    app = web.Application()
    app.router.add_post("/token", token)
    token_server = await serve(app)
    seen: list[str] = []
    monitoring = await serve(monitoring_app("ya29.file", seen))
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(_service_account_key(f"{token_server}/token")))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "my-project")

    provider = provider_for(spec(type="stackdriver", address=monitoring), {}, context(session))
    assert await provider.run_query("fetch k8s_container") == 0.5
    assert grants == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    assert seen == ["fetch k8s_container"]


GCE_SCRIPT = textwrap.dedent(
    """
    import asyncio, aiohttp, sys
    from coalmine.analysis.providers import ProviderContext, provider_for
    from coalmine.api.models import MetricTemplateProvider

    async def main():
        async with aiohttp.ClientSession() as session:
            spec = MetricTemplateProvider.model_validate({"type": "stackdriver", "address": sys.argv[1]})
            provider = provider_for(spec, {}, ProviderContext(session))
            print(await provider.run_query("fetch k8s_container"))

    asyncio.run(main())
    """
)


async def test_stackdriver_takes_the_workload_identity_token_from_the_metadata_server(
    tmp_path: Path, serve: Serve
) -> None:
    """In its own process: google-auth reads GCE_METADATA_HOST when it is imported."""
    calls: list[str] = []
    seen: list[str] = []
    metadata = await serve(gce_metadata_app("ya29.metadata", calls))
    monitoring = await serve(monitoring_app("ya29.metadata", seen))
    host = metadata.removeprefix("http://")
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GOOGLE_", "GCE_", "CLOUDSDK_"))
    }
    environment.update(
        GCE_METADATA_HOST=host,
        GCE_METADATA_IP=host,
        GOOGLE_CLOUD_PROJECT="my-project",
        CLOUDSDK_CONFIG=str(tmp_path / "gcloud"),
        HOME=str(tmp_path),
        NO_PROXY="127.0.0.1",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", GCE_SCRIPT, monitoring,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    assert out.decode().strip() == "0.5"
    assert "/computeMetadata/v1/instance/service-accounts/default/token" in calls
    assert seen == ["fetch k8s_container"]
