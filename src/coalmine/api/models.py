"""Flagger's `flagger.app/v1beta1` types as pydantic models.

Fields keep the values the user wrote (absent stays `None`) so that writing an object back never
adds fields the user did not set; effective values with Flagger's defaults are properties. Unknown
fields are rejected (`extra="forbid"`) so `coalmine check` can report them instead of dropping them.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from coalmine.api import naming

Provider = Literal[
    "apisix",
    "appmesh",
    "appmesh:v1beta2",
    "contour",
    "gatewayapi:v1",
    "gatewayapi:v1beta1",
    "gloo",
    "istio",
    "knative",
    "kubernetes",
    "kuma",
    "linkerd",
    "nginx",
    "osm",
    "skipper",
    "smi:v1alpha1",
    "smi:v1alpha2",
    "smi:v1alpha3",
    "traefik",
]

Phase = Literal[
    "",
    "Initializing",
    "Initialized",
    "Waiting",
    "Progressing",
    "WaitingPromotion",
    "Promoting",
    "Finalising",
    "Succeeded",
    "Failed",
    "Terminating",
    "Terminated",
]

WebhookType = Literal[
    "",
    "confirm-rollout",
    "pre-rollout",
    "rollout",
    "confirm-promotion",
    "post-rollout",
    "event",
    "rollback",
    "confirm-traffic-increase",
]

Severity = Literal["", "info", "warn", "error"]

MetricProviderType = Literal[
    "prometheus",
    "influxdb",
    "datadog",
    "externalmetrics",
    "stackdriver",
    "cloudwatch",
    "newrelic",
    "graphite",
    "dynatrace",
    "keptn",
    "splunk",
    "http",
]

AlertProviderType = Literal["slack", "msteams", "discord", "rocket", "gchat"]

DURATION_PATTERN = r"^[0-9]+(m|s)"
_GO_DURATION_PART = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")
_GO_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_go_duration(text: str | None) -> float | None:
    """Seconds of a Go duration string (`1m30s`, `500ms`), or None when it does not parse."""
    if not text:
        return None
    if text == "0":
        return 0.0
    position = 0
    total = 0.0
    for match in _GO_DURATION_PART.finditer(text):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _GO_DURATION_UNITS[match.group(2)]
        position = match.end()
    if position != len(text) or position == 0:
        return None
    return total


class Model(BaseModel):
    """Base of every API type: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_assignment=False,
    )

    def to_wire(self) -> dict[str, Any]:
        """The object as it is sent to the API server: aliases, nothing the user did not set."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class OpenModel(Model):
    """A type whose upstream schema allows fields we do not model (kept as they are)."""

    model_config = ConfigDict(extra="allow")


# --- metadata -------------------------------------------------------------------------------


class OwnerReference(OpenModel):
    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(OpenModel):
    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    finalizers: list[str] | None = None
    owner_references: list[OwnerReference] | None = None


class CrossNamespaceObjectReference(Model):
    api_version: str | None = None
    kind: str | None = None
    name: str
    namespace: str | None = None


class LocalObjectReference(Model):
    name: str


# --- spec.targetRef and friends ---------------------------------------------------------------


class TargetRef(Model):
    api_version: str
    kind: Literal["DaemonSet", "Deployment", "Service"]
    name: str

    @property
    def is_knative(self) -> bool:
        return self.kind == "Service" and self.api_version == "serving.knative.dev/v1"

    @property
    def is_core_service(self) -> bool:
        return self.kind == "Service" and not self.is_knative


class ScalerReplicas(Model):
    min_replicas: int | None = Field(default=None, ge=1)
    max_replicas: int | None = Field(default=None, ge=1)


class AutoscalerRef(Model):
    api_version: str
    kind: Literal["HorizontalPodAutoscaler", "ScaledObject"]
    name: str
    primary_scaler_queries: dict[str, str] | None = None
    primary_scaler_replicas: ScalerReplicas | None = None


class IngressRef(Model):
    api_version: str
    kind: Literal["Ingress"]
    name: str


class RouteRef(Model):
    api_version: str
    kind: Literal["ApisixRoute"]
    name: str


class UpstreamRef(Model):
    api_version: str
    kind: Literal["Upstream"]
    name: str
    namespace: str | None = None


# --- spec.service -----------------------------------------------------------------------------


class CustomMetadata(Model):
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class UnmanagedMetadata(Model):
    labels: list[str] | None = None
    annotations: list[str] | None = None


class HeaderOperations(Model):
    add: dict[str, str] | None = None
    set: dict[str, str] | None = None
    remove: list[str] | None = None


class Headers(Model):
    request: HeaderOperations | None = None
    response: HeaderOperations | None = None


class HTTPRewrite(Model):
    uri: str | None = None
    authority: str | None = None
    type: str | None = None


class HTTPRetry(Model):
    attempts: int | None = None
    per_try_timeout: str | None = None
    retry_on: str | None = None


class StringMatch(Model):
    """Istio's StringMatch: exactly one of the match kinds (Gateway API headers add `suffix`)."""

    exact: str | None = None
    prefix: str | None = None
    suffix: str | None = None
    regex: str | None = None


class CorsPolicy(Model):
    allow_origin: list[str] | None = None
    allow_origins: list[StringMatch] | None = None
    allow_methods: list[str] | None = None
    allow_headers: list[str] | None = None
    expose_headers: list[str] | None = None
    max_age: str | None = None
    allow_credentials: bool | None = None


class GatewayRef(Model):
    group: str | None = None
    kind: str | None = None
    name: str
    namespace: str | None = None
    section_name: str | None = None
    port: int | None = None


class MirrorBackendRef(Model):
    group: str | None = None
    kind: str | None = None
    name: str
    namespace: str | None = None
    port: int | None = None


class MirrorFilter(OpenModel):
    backend_ref: MirrorBackendRef


class HTTPMatchRequest(OpenModel):
    """Istio's HTTPMatchRequest; fields beyond the common ones are kept as written."""

    name: str | None = None
    uri: StringMatch | None = None
    scheme: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    headers: dict[str, StringMatch] | None = None
    query_params: dict[str, StringMatch] | None = None
    without_headers: dict[str, StringMatch] | None = None
    ignore_uri_case: bool | None = None
    port: int | None = None
    source_labels: dict[str, str] | None = None
    source_namespace: str | None = None
    gateways: list[str] | None = None


class CanaryService(Model):
    name: str | None = None
    port: int = Field(ge=1, le=65535)
    port_name: str | None = None
    target_port: int | str | None = None
    app_protocol: str | None = None
    traffic_distribution: Literal["PreferClose", "PreferSameZone", "PreferSameNode"] | None = None
    port_discovery: bool | None = None
    headless: bool | None = None
    timeout: str | None = None
    backend_timeout: str | None = None
    gateways: list[str] | None = None
    gateway_refs: list[GatewayRef] | None = Field(default=None, max_length=32)
    hosts: list[str] | None = None
    delegation: bool | None = None
    traffic_policy: dict[str, Any] | None = None
    match: list[HTTPMatchRequest] | None = None
    rewrite: HTTPRewrite | None = None
    retries: HTTPRetry | None = None
    headers: Headers | None = None
    mirror: list[MirrorFilter] | None = None
    cors_policy: CorsPolicy | None = None
    mesh_name: str | None = None
    backends: list[str] | None = None
    apex: CustomMetadata | None = None
    primary: CustomMetadata | None = None
    canary: CustomMetadata | None = None
    unmanaged_metadata: UnmanagedMetadata | None = None

    @property
    def effective_port_name(self) -> str:
        return self.port_name or "http"


# --- spec.analysis ----------------------------------------------------------------------------


class ThresholdRange(Model):
    min: float | None = None
    max: float | None = None


class MetricTemplateRef(Model):
    name: str
    namespace: str | None = None


class CanaryMetric(Model):
    name: str
    interval: str | None = Field(default=None, pattern=DURATION_PATTERN)
    threshold: float | None = None
    threshold_range: ThresholdRange | None = None
    query: str | None = None
    template_ref: MetricTemplateRef | None = None
    template_variables: dict[str, str] | None = None


class CanaryWebhook(Model):
    name: str
    url: str
    type: WebhookType | None = None
    mute_alert: bool | None = None
    timeout: str | None = Field(default=None, pattern=DURATION_PATTERN)
    retries: int | None = None
    disable_tls: bool | None = Field(default=None, alias="disableTLS")
    metadata: dict[str, str] | None = None

    @property
    def effective_type(self) -> str:
        return self.type or "rollout"


class ProviderRef(Model):
    name: str
    namespace: str | None = None


class CanaryAlert(Model):
    name: str
    severity: Severity | None = None
    provider_ref: ProviderRef


class ABMatch(OpenModel):
    """One A/B match condition; Istio's HTTPMatchRequest fields beyond these are kept."""

    headers: dict[str, StringMatch] | None = None
    query_params: dict[str, StringMatch] | None = None
    source_labels: dict[str, str] | None = None
    uri: StringMatch | None = None
    method: StringMatch | None = None


class SessionAffinity(Model):
    cookie_name: str
    primary_cookie_name: str | None = None
    domain: str | None = None
    http_only: bool | None = None
    max_age: int | None = None
    partitioned: bool | None = None
    path: str | None = None
    same_site: Literal["Strict", "Lax", "None"] | None = None
    secure: bool | None = None

    @property
    def effective_max_age(self) -> int:
        return self.max_age or 86400


MIN_ANALYSIS_INTERVAL_SECONDS = 10.0
DEFAULT_ANALYSIS_INTERVAL_SECONDS = 60.0


class CanaryAnalysis(Model):
    interval: str | None = Field(default=None, pattern=DURATION_PATTERN)
    threshold: int | None = None
    iterations: int | None = None
    mirror: bool | None = None
    mirror_weight: int | None = Field(default=None, ge=0, le=100)
    max_weight: int | None = None
    step_weight: int | None = None
    step_weights: list[int] | None = None
    step_weight_promotion: int | None = None
    primary_ready_threshold: int | None = None
    canary_ready_threshold: int | None = None
    alerts: list[CanaryAlert] | None = None
    metrics: list[CanaryMetric] | None = None
    webhooks: list[CanaryWebhook] | None = None
    match: list[ABMatch] | None = None
    session_affinity: SessionAffinity | None = None

    def interval_seconds(self, minimum: float = MIN_ANALYSIS_INTERVAL_SECONDS) -> float:
        """Flagger's job period: unparsable means 60s, anything shorter than the minimum is raised."""
        seconds = parse_go_duration(self.interval)
        if seconds is None or seconds <= 0:
            seconds = DEFAULT_ANALYSIS_INTERVAL_SECONDS
        return max(seconds, minimum)

    @property
    def effective_threshold(self) -> int:
        return self.threshold if self.threshold and self.threshold > 0 else 1

    @property
    def effective_iterations(self) -> int:
        return self.iterations or 0

    @property
    def effective_max_weight(self) -> int:
        if self.step_weights:
            return min(100, self.step_weights[-1])
        return self.max_weight or 100

    @property
    def effective_primary_ready_threshold(self) -> int:
        return self.primary_ready_threshold or 100

    @property
    def effective_canary_ready_threshold(self) -> int:
        return self.canary_ready_threshold or 100


Strategy = Literal["canary", "blue-green", "ab-testing"]


class CanarySpec(Model):
    provider: Provider | None = None
    metrics_server: str | None = None
    progress_deadline_seconds: int | None = None
    target_ref: TargetRef
    autoscaler_ref: AutoscalerRef | None = None
    ingress_ref: IngressRef | None = None
    route_ref: RouteRef | None = None
    upstream_ref: UpstreamRef | None = None
    service: CanaryService
    analysis: CanaryAnalysis | None = None
    skip_analysis: bool | None = None
    revert_on_deletion: bool | None = None
    suspend: bool | None = None

    @property
    def effective_progress_deadline_seconds(self) -> int:
        return self.progress_deadline_seconds or 600

    @property
    def apex_name(self) -> str:
        return self.service.name or self.target_ref.name

    @property
    def strategy(self) -> Strategy:
        analysis = self.analysis
        if analysis is None:
            return "canary"
        if analysis.match and analysis.effective_iterations > 0:
            return "ab-testing"
        if analysis.effective_iterations > 0:
            return "blue-green"
        return "canary"


class Condition(OpenModel):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str | None = None
    message: str | None = None
    last_update_time: str | None = None
    last_transition_time: str | None = None


class CanaryStatus(Model):
    phase: Phase | None = None
    failed_checks: int | None = None
    canary_weight: int | None = None
    iterations: int | None = None
    tracked_configs: dict[str, str] | None = None
    last_applied_spec: str | None = None
    last_promoted_spec: str | None = None
    last_transition_time: str | None = None
    session_affinity_cookie: str | None = None
    primary_session_affinity_cookie: str | None = None
    previous_session_affinity_cookie: str | None = None
    conditions: list[Condition] | None = None


class Canary(Model):
    api_version: str = naming.API_VERSION
    kind: Literal["Canary"] = "Canary"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: CanarySpec
    status: CanaryStatus | None = None

    @property
    def name(self) -> str:
        return self.metadata.name or ""

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or "default"

    @property
    def key(self) -> str:
        """`name.namespace`, the way Flagger names a canary in events, logs and alerts."""
        return f"{self.name}.{self.namespace}"


# --- MetricTemplate ---------------------------------------------------------------------------


class MetricTemplateProvider(Model):
    type: MetricProviderType
    address: str | None = None
    headers: dict[str, list[str]] | None = None
    secret_ref: LocalObjectReference | None = None
    region: str | None = None
    insecure_skip_verify: bool | None = None


class MetricTemplateSpec(Model):
    provider: MetricTemplateProvider
    query: str


class GenericStatus(Model):
    conditions: list[Condition] | None = None


class MetricTemplate(Model):
    api_version: str = naming.API_VERSION
    kind: Literal["MetricTemplate"] = "MetricTemplate"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: MetricTemplateSpec
    status: GenericStatus | None = None


# --- AlertProvider ----------------------------------------------------------------------------


class AlertProviderSpec(Model):
    type: AlertProviderType
    channel: str | None = None
    username: str | None = None
    address: str | None = None
    proxy: str | None = None
    secret_ref: LocalObjectReference | None = None

    @property
    def effective_channel(self) -> str:
        return self.channel or "general"

    @property
    def effective_username(self) -> str:
        return self.username or "flagger"


class AlertProvider(Model):
    api_version: str = naming.API_VERSION
    kind: Literal["AlertProvider"] = "AlertProvider"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: AlertProviderSpec
    status: GenericStatus | None = None
