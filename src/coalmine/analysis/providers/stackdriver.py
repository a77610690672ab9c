"""Google Cloud Monitoring (Stackdriver): MQL through `projects.timeSeries.query`.

A service-account key from the Secret is exchanged for an access token with the OAuth 2.0 JWT
bearer grant (an RS256-signed assertion posted to the key's `token_uri`); without a key, the GCE
metadata server's token is used, as Google's client libraries do for ambient credentials.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from coalmine.analysis.providers.base import (
    Credentials,
    NoValuesFound,
    ProviderConfigError,
    ProviderContext,
    ProviderError,
    credential,
    http_request,
    register,
    requesting_error,
    to_float,
)
from coalmine.api.models import MetricTemplateProvider
from coalmine.outbound import safe_text

DEFAULT_ADDRESS = "https://monitoring.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/monitoring.read"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_jwt(key: dict[str, Any], now: float, scope: str = SCOPE) -> str:
    """An RS256 JWT assertion for Google's token endpoint from a service-account key."""
    private_key = serialization.load_pem_private_key(key["private_key"].encode(), password=None)
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise ProviderConfigError("serviceAccountKey private_key is not an RSA key")
    header = {"alg": "RS256", "typ": "JWT"}
    if key.get("private_key_id"):
        header["kid"] = key["private_key_id"]
    claims = {
        "iss": key["client_email"],
        "scope": scope,
        "aud": key["token_uri"],
        "iat": int(now),
        "exp": int(now) + 3600,
    }
    signing_input = (
        _b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    signature = private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


class StackdriverProvider:
    def __init__(
        self,
        spec: MetricTemplateProvider,
        credentials: Credentials,
        context: ProviderContext,
        interval: str,
    ) -> None:
        project = credential(credentials, "project")
        if spec.secret_ref is not None and not project:
            raise ProviderConfigError("stackdriver credentials does not contain project")
        project = project or os.environ.get("GOOGLE_CLOUD_PROJECT")
        if not project:
            raise ProviderConfigError("stackdriver project is not set (Secret key project)")
        self.address = (spec.address or DEFAULT_ADDRESS).rstrip("/")
        self.url = f"{self.address}/v3/projects/{project}/timeSeries:query"
        self.key: dict[str, Any] | None = None
        raw_key = credential(credentials, "serviceAccountKey")
        if raw_key:
            try:
                self.key = json.loads(raw_key)
            except ValueError as error:
                raise ProviderConfigError(f"serviceAccountKey is not JSON: {error}") from error
            missing = [
                k
                for k in ("client_email", "private_key", "token_uri")
                if not (self.key or {}).get(k)
            ]
            if missing:
                raise ProviderConfigError(f"serviceAccountKey lacks {', '.join(missing)}")
        self.context = context
        self._token: str | None = None
        self._token_expiry = 0.0

    async def _access_token(self) -> str:
        now = self.context.clock()
        if self._token and now < self._token_expiry - 60:
            return self._token
        if self.key is not None:
            response = await http_request(
                self.context,
                "POST",
                self.key["token_uri"],
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                data=f"grant_type={JWT_GRANT.replace(':', '%3A')}&assertion={signed_jwt(self.key, now)}",
            )
        else:
            host = os.environ.get("GCE_METADATA_HOST", "metadata.google.internal")
            response = await http_request(
                self.context,
                "GET",
                f"http://{host}/computeMetadata/v1/instance/service-accounts/default/token",
                headers={"Metadata-Flavor": "Google"},
            )
        if response.status != 200:
            raise ProviderError(
                f"error getting access token: status {response.status}: {safe_text(response.text, 300)}"
            )
        body = response.json()
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise ProviderError("error getting access token: no access_token in answer")
        self._token = str(token)
        self._token_expiry = now + float(body.get("expires_in", 3600))
        return self._token

    async def _query(self, mql: str) -> tuple[int, Any, str]:
        token = await self._access_token()
        response = await http_request(
            self.context,
            "POST",
            self.url,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            data=json.dumps({"query": mql}),
        )
        return response.status, response.json_or_empty(), response.text

    async def run_query(self, query: str) -> float:
        status, body, text = await self._query(query)
        if status != 200:
            raise requesting_error("stackdriver", status, text)
        series = body.get("timeSeriesData") if isinstance(body, dict) else None
        if not series:
            raise NoValuesFound("no time series")
        points = series[0].get("pointData") or []
        if not points or not points[0].get("values"):
            raise NoValuesFound("no points")
        return to_float(points[0]["values"][0].get("doubleValue"), "doubleValue")

    async def is_online(self) -> bool:
        status, body, text = await self._query("")
        error = body.get("error", {}) if isinstance(body, dict) else {}
        if status == 200 or (status == 400 and error.get("status") == "INVALID_ARGUMENT"):
            return True
        raise requesting_error("stackdriver", status, text)


register("stackdriver")(StackdriverProvider)
