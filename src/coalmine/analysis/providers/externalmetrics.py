"""The Kubernetes external metrics API (`external.metrics.k8s.io/v1beta1`), e.g. served by KEDA.

Client-agnostic: a plain HTTP GET against the API server. The caller passes the API server URL and
bearer token it uses (ProviderContext.kube_api / kube_token); the template may override the host
(`address`) and token (Secret key `token`).
"""

from __future__ import annotations

import contextlib
import re
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl, quote

from coalmine.analysis.providers.base import (
    Credentials,
    NoValuesFound,
    ProviderConfigError,
    ProviderContext,
    credential,
    error_response,
    http_request,
    register,
    validated_address,
)
from coalmine.api.models import MetricTemplateProvider

_SUFFIXES = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")


def parse_quantity(text: str) -> float:
    """A Kubernetes resource.Quantity (`250m`, `1.5k`, `2Ki`, `1e3`) as a float."""
    match = _QUANTITY.match(text.strip())
    if match is None or match.group(2) not in _SUFFIXES:
        raise ValueError(f"invalid quantity {text!r}")
    try:
        return float(Decimal(match.group(1)) * _SUFFIXES[match.group(2)])
    except InvalidOperation as error:
        raise ValueError(f"invalid quantity {text!r}") from error


class ExternalMetricsProvider:
    provider_type = "externalmetrics"

    def __init__(
        self,
        spec: MetricTemplateProvider,
        credentials: Credentials,
        context: ProviderContext,
        interval: str,
    ) -> None:
        if spec.address:
            self.api = validated_address(spec)
        elif context.kube_api:
            self.api = context.kube_api.rstrip("/")
        else:
            raise ProviderConfigError(
                "externalmetrics needs an address or the controller's Kubernetes API server"
            )
        token = credential(credentials, "token") or context.kube_token
        self.headers = {"Accept": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.verify_tls = not spec.insecure_skip_verify
        # The controller's CA applies when we talk to its own API server.
        self.ssl = None if spec.address else context.kube_ssl
        self.context = context

    async def run_query(self, query: str) -> float:
        path, _, raw_params = query.strip().partition("?")
        namespace, _, metric = path.rpartition("/")
        namespace = namespace or "default"
        if not metric:
            raise ProviderConfigError(
                f"invalid externalmetrics query {query!r}: expected <namespace>/<metric>[?labelSelector=...]"
            )
        url = (
            f"{self.api}/apis/external.metrics.k8s.io/v1beta1/namespaces/"
            f"{quote(namespace, safe='')}/{quote(metric, safe='')}"
        )
        response = await http_request(
            self.context,
            "GET",
            url,
            params=parse_qsl(raw_params, keep_blank_values=True),
            headers=self.headers,
            verify_tls=self.verify_tls,
            ssl_context=self.ssl,
        )
        if response.status >= 400:
            raise error_response(response)
        body = response.json()
        items = body.get("items") if isinstance(body, dict) else None
        if not items:
            raise NoValuesFound()
        try:
            return parse_quantity(str(items[0].get("value")))
        except ValueError as error:
            raise NoValuesFound(str(error)) from error

    async def is_online(self) -> bool:
        with contextlib.suppress(NoValuesFound):
            await self.run_query("kube-system/dummy-metric")
        return True


register("externalmetrics")(ExternalMetricsProvider)
