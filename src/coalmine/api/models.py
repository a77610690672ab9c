"""Flagger's `flagger.app/v1beta1` types as pydantic models.

Fields keep the values the user wrote (absent stays `None`) so that writing an object back never
adds fields the user did not set; effective values with Flagger's defaults are properties. Unknown
fields are rejected (`extra="forbid"`) so `coalmine check` can report them instead of dropping them.
Validation is strict (no "10" → 10 coercion) because the API server would refuse such a value too.

One module over ~600 lines on purpose: it is the schema (the CRDs are generated from it) and reads
best as one file beside Flagger's `types.go`, section by section.

These classes are also the source of the CRD schemas (`coalmine.api.crds` walks them), so a field's
`description` ends up in `kubectl explain`, and `Field(json_schema_extra={"crd_default": ...})` marks a
default that the API server applies (only used where Flagger's own CRD declares one).
"""

from __future__ import annotations

import re
from typing import Any, Literal, cast, get_args

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from coalmine.api import naming, providers

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
PROVIDERS: tuple[str, ...] = get_args(Provider)


def canonical_provider(value: str | None) -> Provider | None:
    """The CRD provider value a provider string stands for (`coalmine.api.providers.canonical`):
    `spec.provider` takes the exact CRD values; `--mesh-provider` also the router factory's prefix
    forms (`smi:v1alpha1:istio` → `smi:v1alpha1`). None: not a provider Flagger knows."""
    return cast(Provider | None, providers.canonical(value))


Phase = Literal[
    "",
    "Initializing",
    "Initialized",
    "Waiting",
    "Progressing",
    "WaitingPromotion",
    "WaitingDecision",
    "Promoting",
    "Finalising",
    "Succeeded",
    "Failed",
    "Terminating",
    "Terminated",
]

# Phase sets, named by what the phases have in common (the scheduler and the release verbs read them).
#: Before initialisation is done: the primary may not exist or be ready yet.
INITIALIZING_PHASES: frozenset[Phase] = frozenset({"", "Initializing"})
#: Analysis runs (or waits for a decision) and promotion has not begun.
ANALYSING_PHASES: frozenset[Phase] = frozenset(
    {"Progressing", "WaitingPromotion", "WaitingDecision"}
)
#: The primary is taking the canary's spec.
PROMOTING_PHASES: frozenset[Phase] = frozenset({"Promoting", "Finalising"})
#: A release before promotion: waiting for approval or analysing (`abort` and rollback hooks stop it).
PRE_PROMOTION_PHASES: frozenset[Phase] = frozenset(
    {"Waiting", "Progressing", "WaitingPromotion", "WaitingDecision"}
)
#: A run has started (past the approval gate) and not finished: analysing or promoting.
STARTED_PHASES: frozenset[Phase] = ANALYSING_PHASES | PROMOTING_PHASES
#: A release is in progress: a new revision waits for approval (`Waiting`) or a run has started.
RELEASE_PHASES: frozenset[Phase] = frozenset(
    {"Waiting", "Progressing", "WaitingPromotion", "WaitingDecision", "Promoting", "Finalising"}
)

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
    "confirm-decision",
]

#: How loud an alert is (`CanaryAlert.severity`, AlertProvider entries, the chat message).
AlertSeverity = Literal["info", "warn", "error"]
#: The type of a Kubernetes Event: the scheduler records, event webhooks forward.
EventType = Literal["Normal", "Warning"]

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

SUCCESS_RATE_METRIC = "request-success-rate"
DURATION_METRIC = "request-duration"
BUILTIN_METRICS: tuple[str, ...] = (SUCCESS_RATE_METRIC, DURATION_METRIC)

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

# Gateway API name constraints, as in Flagger's CRD (copied from the Gateway API types).
_DNS_SUBDOMAIN_OR_EMPTY = r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_KIND_PATTERN = r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$"
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_SECTION_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


# Go's time.Duration is an int64 of nanoseconds: about 292 years; ParseDuration refuses more.
GO_DURATION_MAX_SECONDS = (2**63 - 1) / 1e9


def parse_go_duration(text: str | None) -> float | None:
    """Seconds of a Go duration string (`1m30s`, `500ms`), or None when Go could not parse it.

    Like `time.ParseDuration`, a duration longer than an int64 of nanoseconds does not parse.
    """
    seconds = duration_seconds(text)
    return seconds if seconds is not None and seconds <= GO_DURATION_MAX_SECONDS else None


def duration_seconds(text: str | None) -> float | None:
    """Seconds of a well-formed Go duration string, even one too long for Go (validation's view)."""
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


def crd_default(value: Any) -> dict[str, Any]:
    """Marks a default the API server applies (written into the CRD schema, not into the model)."""
    return {"crd_default": value}


class Model(BaseModel):
    """Base of every API type: camelCase on the wire, unknown fields refused, no type coercion."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        strict=True,
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
    """Kubernetes object metadata; the CRD leaves it to the API server (`type: object`)."""

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


class LocalObjectReference(Model):
    name: str = Field(description="Name of the Kubernetes secret")


# --- spec.targetRef and friends ---------------------------------------------------------------

KNATIVE_API_VERSION = "serving.knative.dev/v1"
CORE_SERVICE_API_VERSIONS: tuple[str, ...] = ("v1", "core/v1")


class TargetRef(Model):
    """The workload under test: a Deployment, a DaemonSet, or a (core or Knative) Service."""

    api_version: str
    kind: Literal["DaemonSet", "Deployment", "Service"]
    name: str

    @property
    def is_knative(self) -> bool:
        return self.kind == "Service" and self.api_version == KNATIVE_API_VERSION

    @property
    def is_core_service(self) -> bool:
        return self.kind == "Service" and not self.is_knative


class ScalerReplicas(Model):
    min_replicas: int | None = Field(default=None, ge=1)
    max_replicas: int | None = Field(default=None, ge=1)


class AutoscalerRef(Model):
    """Scaler selector: an HPA or a KEDA ScaledObject that gets a `-primary` copy."""

    api_version: str
    kind: Literal["HorizontalPodAutoscaler", "ScaledObject"]
    name: str
    primary_scaler_queries: dict[str, str] | None = None
    primary_scaler_replicas: ScalerReplicas | None = None


class IngressRef(Model):
    """Ingress selector (NGINX and Skipper providers)."""

    api_version: str
    kind: Literal["Ingress"]
    name: str


class RouteRef(Model):
    """APISIX route selector."""

    api_version: str
    kind: Literal["ApisixRoute"]
    name: str


class UpstreamRef(Model):
    """Gloo Upstream selector: its settings are copied into the generated upstreams."""

    api_version: str
    kind: Literal["Upstream"]
    name: str
    namespace: str | None = None


# --- spec.service -----------------------------------------------------------------------------


class CustomMetadata(Model):
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class UnmanagedMetadata(Model):
    """Metadata keys on generated Services that the operator must leave alone."""

    labels: list[str] | None = None
    annotations: list[str] | None = None


class HeaderOperations(Model):
    add: dict[str, str] | None = None
    set: dict[str, str] | None = None
    remove: list[str] | None = None


class Headers(Model):
    """Header operations on requests and responses."""

    request: HeaderOperations | None = None
    response: HeaderOperations | None = None


class HTTPRewrite(Model):
    """Rewrite HTTP URIs."""

    uri: str | None = None
    authority: str | None = None
    type: str | None = None


class HTTPRetry(Model):
    """Retry policy for HTTP requests."""

    attempts: int | None = Field(default=None, description="Number of retries for a given request")
    per_try_timeout: str | None = Field(
        default=None, description="Timeout per retry attempt for a given request"
    )
    retry_on: str | None = Field(
        default=None, description="Specifies the conditions under which retry takes place"
    )


class StringMatch(Model):
    """A string match: exactly one of exact, prefix, suffix or regex (RE2)."""

    exact: str | None = None
    prefix: str | None = None
    suffix: str | None = None
    regex: str | None = None

    @property
    def kinds(self) -> list[str]:
        return [
            name
            for name in ("exact", "prefix", "suffix", "regex")
            if getattr(self, name) is not None
        ]


class CorsPolicy(Model):
    """Istio Cross-Origin Resource Sharing policy (CORS)."""

    allow_origin: list[str] | None = None
    allow_origins: list[StringMatch] | None = None
    allow_methods: list[str] | None = None
    allow_headers: list[str] | None = None
    expose_headers: list[str] | None = None
    max_age: str | None = None
    allow_credentials: bool | None = None


class GatewayRef(Model):
    """A Gateway API parent reference of the generated HTTPRoute."""

    group: str | None = Field(
        default=None,
        max_length=253,
        pattern=_DNS_SUBDOMAIN_OR_EMPTY,
        json_schema_extra=crd_default("gateway.networking.k8s.io"),
    )
    kind: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        pattern=_KIND_PATTERN,
        json_schema_extra=crd_default("Gateway"),
    )
    name: str = Field(min_length=1, max_length=253)
    namespace: str | None = Field(default=None, min_length=1, max_length=63, pattern=_DNS_LABEL)
    section_name: str | None = Field(
        default=None, min_length=1, max_length=253, pattern=_SECTION_NAME
    )
    port: int | None = Field(default=None, ge=1, le=65535)


class MirrorBackendRef(Model):
    """The Service (or other backend) that receives mirrored requests."""

    # Gateway API's own rule, as in Flagger's CRD (checked by the API server with CEL).
    model_config = ConfigDict(
        json_schema_extra={
            "crd": {
                "x-kubernetes-validations": [
                    {
                        "message": "Must have port for Service reference",
                        "rule": "(size(self.group) == 0 && self.kind == 'Service') "
                        "? has(self.port) : true",
                    }
                ]
            }
        }
    )

    group: str | None = Field(
        default=None,
        max_length=253,
        pattern=_DNS_SUBDOMAIN_OR_EMPTY,
        json_schema_extra=crd_default(""),
    )
    kind: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        pattern=_KIND_PATTERN,
        json_schema_extra=crd_default("Service"),
    )
    name: str = Field(min_length=1, max_length=253)
    namespace: str | None = Field(default=None, min_length=1, max_length=63, pattern=_DNS_LABEL)
    port: int | None = Field(default=None, ge=1, le=65535)


class MirrorFilter(Model):
    """A Gateway API RequestMirror filter added to every generated rule."""

    backend_ref: MirrorBackendRef


class HTTPMatchRequest(Model):
    """Istio's HTTPMatchRequest: base match conditions of every generated route."""

    name: str | None = Field(default=None, description="The name assigned to a match.")
    uri: StringMatch | None = None
    scheme: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    headers: dict[str, StringMatch] | None = None
    query_params: dict[str, StringMatch] | None = Field(
        default=None, description="Query parameters for matching."
    )
    without_headers: dict[str, StringMatch] | None = None
    ignore_uri_case: bool | None = None
    port: int | None = None
    source_labels: dict[str, str] | None = None
    source_namespace: str | None = None
    gateways: list[str] | None = None


class CanaryService(Model):
    """How the target is exposed: the apex, `-primary` and `-canary` Services and the routing object."""

    name: str | None = Field(default=None, description="Kubernetes service name")
    port: int = Field(ge=1, le=65535, description="Container port number")
    port_name: str | None = Field(default=None, description="Container port name")
    target_port: int | str | None = Field(default=None, description="Container target port name")
    app_protocol: str | None = Field(default=None, description="Application protocol of the port")
    traffic_distribution: Literal["PreferClose", "PreferSameZone", "PreferSameNode"] | None = Field(
        default=None, description="Traffic distribution of the service"
    )
    port_discovery: bool | None = Field(default=None, description="Enable port discovery")
    headless: bool | None = Field(
        default=None, description="Headless if set to true, generates headless Kubernetes services."
    )
    timeout: str | None = Field(default=None, description="HTTP or gRPC request timeout")
    backend_timeout: str | None = Field(
        default=None, description="Backend request timeout (Gateway API only)"
    )
    gateways: list[str] | None = Field(
        default=None, description="The list of Istio gateway for this virtual service"
    )
    gateway_refs: list[GatewayRef] | None = Field(
        default=None, max_length=32, description="The list of parent Gateways for a HTTPRoute"
    )
    hosts: list[str] | None = Field(
        default=None, description="The list of host names for this service"
    )
    delegation: bool | None = Field(
        default=None, description="enable behaving as a delegate VirtualService"
    )
    traffic_policy: dict[str, Any] | None = Field(default=None, description="Istio traffic policy")
    match: list[HTTPMatchRequest] | None = Field(default=None, description="URI match conditions")
    rewrite: HTTPRewrite | None = None
    retries: HTTPRetry | None = None
    headers: Headers | None = None
    mirror: list[MirrorFilter] | None = None
    cors_policy: CorsPolicy | None = None
    mesh_name: str | None = Field(default=None, description="AppMesh mesh name")
    backends: list[str] | None = Field(default=None, description="AppMesh backend array")
    apex: CustomMetadata | None = Field(
        default=None, description="Metadata to add to the apex service"
    )
    primary: CustomMetadata | None = Field(
        default=None, description="Metadata to add to the primary service"
    )
    canary: CustomMetadata | None = Field(
        default=None, description="Metadata to add to the canary service"
    )
    unmanaged_metadata: UnmanagedMetadata | None = None

    @property
    def effective_port_name(self) -> str:
        return self.port_name or "http"


# --- spec.analysis ----------------------------------------------------------------------------


class ThresholdRange(Model):
    """Range accepted for this metric."""

    min: float | None = Field(default=None, description="Min value accepted for this metric")
    max: float | None = Field(default=None, description="Max value accepted for this metric")


class MetricTemplateRef(Model):
    """Metric template reference."""

    name: str = Field(description="Name of this metric template")
    namespace: str | None = Field(default=None, description="Namespace of this metric template")


AGGREGATE_PATTERN = r"^(last|avg|max|min|p([0-9]|[1-9][0-9])(\.[0-9]+)?)$"
NoDataPolicy = Literal["fail", "pass", "inconclusive"]


class MetricJudge(Model):
    """coalmine: compare the canary against a control workload with Mann-Whitney U (docs/analysis.md)."""

    control: Literal["primary", "baseline"] | None = Field(
        default=None,
        description="Workload the canary is compared with: primary (default) or a fresh baseline",
    )
    confidence: float | None = Field(
        default=None, ge=0.5, le=0.9999, description="Confidence level of the test (default 0.98)"
    )
    tolerance: float | None = Field(
        default=None,
        ge=0,
        description="Shifts within tolerance x |control median| pass (default 0.01)",
    )
    direction: Literal["increase", "decrease", "either"] | None = Field(
        default=None, description="Which change is bad (default either)"
    )
    effect_size: Literal["meanRatio", "cles"] | None = Field(
        default=None, description="Effect size measure gating High/Low (default meanRatio)"
    )
    allowed_increase: float | None = Field(
        default=None, description="Effect size a High must reach (default 1.0 ratio / 0.5 cles)"
    )
    allowed_decrease: float | None = Field(
        default=None, description="Effect size a Low must fall to (default 1.0 ratio / 0.5 cles)"
    )
    critical: bool | None = Field(
        default=None, description="A High/Low/NoData on this metric fails the canary run"
    )
    must_have_data: bool | None = Field(
        default=None, description="NoData counts as a failure in the group score"
    )
    nan_strategy: Literal["remove", "replace"] | None = Field(
        default=None, description="NaN samples: removed (default) or replaced by 0"
    )
    outliers: Literal["keep", "remove"] | None = Field(
        default=None, description="Samples outside the IQR fence: kept (default) or removed"
    )
    outlier_factor: float | None = Field(
        default=None, ge=0, description="IQR fence factor for outlier removal (default 3.0)"
    )
    group: str | None = Field(default=None, description="Score group (default: the metric name)")
    step: str | None = Field(
        default=None, pattern=DURATION_PATTERN, description="Range query resolution (default 15s)"
    )


class JudgeScoring(Model):
    """coalmine: how judged metrics become a score (Kayenta's weighted group sum)."""

    pass_score: float | None = Field(
        default=None, ge=0, le=100, description="Score the last analysis must reach (default 95)"
    )
    marginal_score: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Every interim score must stay above it (default 75)",
    )
    group_weights: dict[str, float] | None = Field(
        default=None,
        description="Weight of each group in the score (unlisted groups share the rest)",
    )


class FreshBaseline(Model):
    """coalmine: a fresh baseline for the run: the primary's version started with the canary,
    sized like it and given its traffic share (docs/analysis.md, 'A fresh baseline')."""

    enabled: bool | None = Field(
        default=None,
        description=(
            "Run a <target>-baseline copy of the primary during each canary run (judged "
            "metrics compare the canary against it)"
        ),
    )


class CanaryMetric(Model):
    name: str = Field(description="Name of the metric")
    interval: str | None = Field(
        default=None, pattern=DURATION_PATTERN, description="Interval of the query"
    )
    threshold: float | None = Field(
        default=None, description="Max value accepted for this metric (deprecated)"
    )
    threshold_range: ThresholdRange | None = None
    query: str | None = Field(default=None, description="Prometheus query (deprecated)")
    template_ref: MetricTemplateRef | None = None
    template_variables: dict[str, str] | None = Field(
        default=None,
        description="Additional variables to be used in the metrics query (key-value pairs)",
    )
    # coalmine's analysis semantics (docs/analysis.md); all optional, Flagger's without them.
    success_condition: str | None = Field(
        default=None, description="Expression over result that makes a measurement successful"
    )
    failure_condition: str | None = Field(
        default=None, description="Expression over result that makes a measurement fail"
    )
    dry_run: bool | None = Field(
        default=None, description="Evaluate and record the metric, never fail the canary"
    )
    consecutive_error_limit: int | None = Field(
        default=None, ge=0, description="Provider errors in a row tolerated before a failed check"
    )
    no_data: NoDataPolicy | None = Field(
        default=None,
        description="What a query without values means: fail (default), pass, inconclusive",
    )
    aggregate: str | None = Field(
        default=None,
        pattern=AGGREGATE_PATTERN,
        description="Range query over the interval reduced by last, avg, max, min or pNN",
    )
    judge: MetricJudge | None = None

    @property
    def is_builtin(self) -> bool:
        return self.name in BUILTIN_METRICS


class CanaryWebhook(Model):
    name: str = Field(description="Name of the webhook")
    url: str = Field(description="URL address of this webhook")
    type: WebhookType | None = Field(
        default=None, description="Type of the webhook pre, post or during rollout"
    )
    mute_alert: bool | None = Field(default=None, description="Mute all alerts for the webhook")
    timeout: str | None = Field(
        default=None, pattern=DURATION_PATTERN, description="Request timeout for this webhook"
    )
    retries: int | None = Field(default=None, description="Number of retries for this webhook")
    disable_tls: bool | None = Field(
        default=None, alias="disableTLS", description="Disable TLS verification for this webhook"
    )
    metadata: dict[str, str] | None = Field(
        default=None, description="Metadata (key-value pairs) for this webhook"
    )

    @property
    def effective_type(self) -> str:
        return self.type or "rollout"


class ProviderRef(Model):
    """Alert provider reference."""

    name: str = Field(description="Name of the alert provider")
    namespace: str | None = Field(default=None, description="Namespace of the alert provider")


class CanaryAlert(Model):
    name: str = Field(description="Name of the this alert")
    severity: Literal["", AlertSeverity] | None = Field(
        default=None, description="Severity level can be info, warn, error (default info)"
    )
    provider_ref: ProviderRef

    @property
    def effective_severity(self) -> str:
        """An alert without severity is sent as `info` (see docs/decisions.md, 'Alert severity
        default')."""
        return self.severity or "info"


class ABMatch(Model):
    """One A/B match condition (a subset of Istio's HTTPMatchRequest)."""

    headers: dict[str, StringMatch] | None = None
    query_params: dict[str, StringMatch] | None = Field(
        default=None, description="Query parameters for matching."
    )
    source_labels: dict[str, str] | None = Field(
        default=None,
        description="Applicable only when the 'mesh' gateway is included in the service.gateways list",
    )
    uri: StringMatch | None = None
    method: StringMatch | None = None


class SessionAffinity(Model):
    """Session affinity settings for a canary run (Istio and Gateway API)."""

    cookie_name: str = Field(
        description="CookieName is the key that will be used for the session affinity cookie."
    )
    primary_cookie_name: str | None = Field(
        default=None,
        description="PrimaryCookieName is the key of the cookie that pins users to the primary.",
    )
    domain: str | None = Field(
        default=None, description="Domain defines the host to which the cookie will be sent."
    )
    http_only: bool | None = Field(
        default=None, description="HttpOnly forbids JavaScript from accessing the cookie."
    )
    max_age: int | None = Field(
        default=None,
        description="MaxAge indicates the number of seconds until the session affinity cookie will expire.",
        json_schema_extra=crd_default(86400),
    )
    partitioned: bool | None = Field(
        default=None,
        description="Partitioned indicates that the cookie should be stored using partitioned storage.",
    )
    path: str | None = Field(
        default=None,
        description="Path that must exist in the requested URL for the browser to send the Cookie header.",
    )
    same_site: Literal["Strict", "Lax", "None"] | None = Field(
        default=None,
        description="SameSite controls whether or not a cookie is sent with cross-site requests.",
    )
    secure: bool | None = Field(
        default=None,
        description="Secure indicates that the cookie is sent to the server only over https.",
    )

    @property
    def effective_max_age(self) -> int:
        return self.max_age or 86400


MIN_ANALYSIS_INTERVAL_SECONDS = 10.0
DEFAULT_ANALYSIS_INTERVAL_SECONDS = 60.0
#: `provider: kubernetes` runs Blue/Green: this many iterations when `analysis.iterations` is unset.
KUBERNETES_PROVIDER_ITERATIONS = 10


class CanaryAnalysis(Model):
    """Canary analysis: schedule, strategy (weights or iterations), checks, hooks and alerts."""

    # Flagger's CRD: interval and threshold, and exactly one of the three strategies' fields.
    model_config = ConfigDict(
        json_schema_extra={
            "crd": {
                "oneOf": [
                    {"required": ["interval", "threshold", "iterations"]},
                    {"required": ["interval", "threshold", "stepWeight"]},
                    {"required": ["interval", "threshold", "stepWeights"]},
                ]
            }
        }
    )

    interval: str | None = Field(
        default=None, pattern=DURATION_PATTERN, description="Schedule interval for this canary"
    )
    threshold: int | None = Field(
        default=None, description="Max number of failed checks before rollback"
    )
    iterations: int | None = Field(
        default=None, description="Number of checks to run for A/B Testing and Blue/Green"
    )
    mirror: bool | None = Field(default=None, description="Mirror traffic to canary")
    mirror_weight: int | None = Field(
        default=None, ge=0, le=100, description="Weight of traffic to be mirrored"
    )
    max_weight: int | None = Field(default=None, description="Max traffic weight routed to canary")
    step_weight: int | None = Field(
        default=None, description="Incremental traffic step weight for the analysis phase"
    )
    step_weights: list[int] | None = Field(
        default=None, description="Incremental traffic step weights for the analysis phase"
    )
    step_weight_promotion: int | None = Field(
        default=None, description="Incremental traffic step weight for the promotion phase"
    )
    primary_ready_threshold: int | None = Field(
        default=None,
        description="Percentage of pods that need to be available to consider primary as ready",
    )
    canary_ready_threshold: int | None = Field(
        default=None,
        description="Percentage of pods that need to be available to consider canary as ready",
    )
    alerts: list[CanaryAlert] | None = Field(
        default=None, description="Alert list for this canary analysis"
    )
    metrics: list[CanaryMetric] | None = Field(
        default=None, description="Metric check list for this canary"
    )
    webhooks: list[CanaryWebhook] | None = Field(
        default=None, description="Webhook list for this canary"
    )
    match: list[ABMatch] | None = Field(default=None, description="A/B testing match conditions")
    session_affinity: SessionAffinity | None = None
    judge: JudgeScoring | None = None
    baseline: FreshBaseline | None = None

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
        if self.max_weight and self.max_weight > 0:
            return self.max_weight
        return 100

    @property
    def highest_canary_weight(self) -> int:
        """The largest canary weight a run reaches (steps are not clamped to maxWeight: 20 up to
        50 goes 20, 40, 60); 0 for iterations. A fresh baseline takes as much again."""
        if self.effective_iterations > 0:
            return 0
        if self.step_weights:
            return self.effective_max_weight
        step, weight = self.step_weight or 0, 0
        while step > 0 and weight < self.effective_max_weight:
            weight = min(weight + step, 100)
        return weight

    @property
    def wants_baseline(self) -> bool:
        """`baseline.enabled`: each run gets a fresh `<target>-baseline` (docs/analysis.md)."""
        return bool(self.baseline and self.baseline.enabled)

    @property
    def effective_primary_ready_threshold(self) -> int:
        return self.primary_ready_threshold or 100

    @property
    def effective_canary_ready_threshold(self) -> int:
        return self.canary_ready_threshold or 100


Strategy = Literal["canary", "blue-green", "ab-testing"]


class CanarySpec(Model):
    """CanarySpec defines the desired state of a Canary."""

    provider: Provider | None = Field(default=None, description="Traffic management provider")
    metrics_server: str | None = Field(default=None, description="Prometheus URL")
    progress_deadline_seconds: int | None = Field(
        default=None, description="Deployment progress deadline"
    )
    target_ref: TargetRef
    autoscaler_ref: AutoscalerRef | None = None
    ingress_ref: IngressRef | None = None
    route_ref: RouteRef | None = None
    upstream_ref: UpstreamRef | None = None
    service: CanaryService | None = None
    analysis: CanaryAnalysis | None = Field(
        default=None, description="Canary analysis for this canary"
    )
    canary_analysis: CanaryAnalysis | None = Field(
        default=None,
        description=(
            "Deprecated name of analysis (flagger.app/v1alpha3), read only when analysis is absent"
        ),
    )
    skip_analysis: bool | None = Field(default=None, description="Skip analysis and promote canary")
    revert_on_deletion: bool | None = Field(
        default=None, description="Revert mutated resources to original spec on deletion"
    )
    suspend: bool | None = Field(
        default=None, description="Suspend Canary disabling/pausing all canary runs"
    )

    @property
    def effective_analysis(self) -> CanaryAnalysis | None:
        """`analysis`, or the v1alpha3 `canaryAnalysis` when only that one is set (as Flagger reads it)."""
        return self.analysis if self.analysis is not None else self.canary_analysis

    @property
    def required_service(self) -> CanaryService:
        """`spec.service` for code that needs it (every target but a Knative Service has one).

        Validation refuses a non-Knative Canary without `spec.service`, so this only raises for
        a model built without validation.
        """
        if self.service is None:
            raise ValueError(f"spec.service: required for {self.target_ref.kind} targets")
        return self.service

    @property
    def effective_progress_deadline_seconds(self) -> int:
        return self.progress_deadline_seconds or 600

    @property
    def apex_name(self) -> str:
        return (self.service.name if self.service else None) or self.target_ref.name

    @property
    def wants_baseline(self) -> bool:
        """A fresh baseline is asked for (and there is an analysis to run it for)."""
        analysis = self.effective_analysis
        return analysis is not None and analysis.wants_baseline and not self.skip_analysis

    @property
    def skips_analysis(self) -> bool:
        """Flagger's `SkipAnalysis()`: asked for, or nothing to analyse."""
        return bool(self.skip_analysis) or self.effective_analysis is None

    @property
    def strategy(self) -> Strategy:
        analysis = self.effective_analysis
        if analysis is None:
            return "canary"
        if analysis.match and analysis.effective_iterations > 0:
            return "ab-testing"
        if analysis.effective_iterations > 0:
            return "blue-green"
        return "canary"


class Condition(Model):
    type: str = Field(description="Type of this condition")
    status: Literal["True", "False", "Unknown"] = Field(description="Status of this condition")
    reason: str = Field(description="Reason for the current status of this condition")
    message: str | None = Field(default=None, description="Message associated with this condition")
    last_update_time: str | None = Field(
        default=None, description="LastUpdateTime of this condition"
    )
    last_transition_time: str | None = Field(
        default=None, description="LastTransitionTime of this condition"
    )


Verdict = Literal["Pass", "Fail", "Inconclusive", "Error", "NoData", "High", "Low"]


class Measurement(Model):
    """One evaluation of a metric: what was measured, against what, and the verdict."""

    time: str = Field(description="When the measurement was taken")
    verdict: Verdict = Field(description="Pass, Fail, Inconclusive, Error, NoData, High or Low")
    value: float | None = Field(default=None, description="Measured value (canary)")
    baseline: float | None = Field(default=None, description="Control value (judged metrics)")
    threshold: str | None = Field(default=None, description="What the value was compared with")
    dry_run: bool | None = Field(default=None, description="Recorded only, never fails the run")
    message: str | None = Field(default=None, description="Why, when not a pass")


class MetricRecord(Model):
    """The last measurements of one metric."""

    name: str = Field(description="Name of the metric")
    consecutive_errors: int | None = Field(
        default=None, description="Provider errors in a row (consecutiveErrorLimit)"
    )
    measurements: list[Measurement] | None = Field(
        default=None, description="Last measurements, oldest first (bounded)"
    )


class CanaryStatus(Model):
    """CanaryStatus defines the observed state of a canary."""

    phase: Phase | None = Field(default=None, description="Analysis phase of this canary")
    failed_checks: int | None = Field(
        default=None, description="Failed check count of the current canary analysis"
    )
    canary_weight: int | None = Field(default=None, description="Traffic weight routed to canary")
    iterations: int | None = Field(
        default=None, description="Iteration count of the current canary analysis"
    )
    tracked_configs: dict[str, str] | None = Field(
        default=None, description="TrackedConfig of this canary"
    )
    last_applied_spec: str | None = Field(
        default=None, description="LastAppliedSpec of this canary"
    )
    last_promoted_spec: str | None = Field(
        default=None, description="LastPromotedSpec of this canary"
    )
    last_tracked_revision: str | None = Field(
        default=None, description="LastTrackedRevision is the change fence of the canary target"
    )
    last_transition_time: str | None = Field(
        default=None, description="LastTransitionTime of this canary"
    )
    session_affinity_cookie: str | None = Field(
        default=None, description="Session affinity cookie of the current canary run"
    )
    primary_session_affinity_cookie: str | None = Field(
        default=None, description="Primary session affinity cookie of the current canary run"
    )
    previous_session_affinity_cookie: str | None = Field(
        default=None, description="Session affinity cookie of the previous canary run"
    )
    conditions: list[Condition] | None = Field(
        default=None, description="Status conditions of this canary"
    )
    metrics: list[MetricRecord] | None = Field(
        default=None, description="Last measurements per metric (coalmine)"
    )
    judge_score: float | None = Field(
        default=None, description="Judge group score of the last analysis (coalmine)"
    )


class Canary(Model):
    """Canary is the Schema for the Canary API."""

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

    def webhooks_of_type(self, hook_type: str) -> list[CanaryWebhook]:
        """The canary's webhooks of a type in spec order; an empty `type` means `rollout`."""
        analysis = self.spec.analysis
        if analysis is None or not analysis.webhooks:
            return []
        return [hook for hook in analysis.webhooks if hook.effective_type == hook_type]


# --- MetricTemplate ---------------------------------------------------------------------------


class MetricTemplateProvider(Model):
    """Provider of this metric template."""

    type: MetricProviderType = Field(description="Type of this provider")
    address: str | None = Field(default=None, description="API address of this provider")
    headers: dict[str, list[str]] | None = Field(
        default=None, description="Headers to add to HTTP(S) requests"
    )
    secret_ref: LocalObjectReference | None = Field(
        default=None,
        description="Kubernetes secret reference containing the provider credentials",
    )
    region: str | None = Field(default=None, description="Region of the provider")
    insecure_skip_verify: bool | None = Field(
        default=None, description="Disable SSL certificate validation for the provider address"
    )


class MetricTemplateSpec(Model):
    """MetricTemplateSpec defines the desired state of a MetricTemplate."""

    provider: MetricTemplateProvider
    query: str = Field(description="Query of this metric template")


class GenericStatus(Model):
    conditions: list[Condition] | None = None


class MetricTemplate(Model):
    """MetricTemplate is the Schema for the MetricTemplates API."""

    api_version: str = naming.API_VERSION
    kind: Literal["MetricTemplate"] = "MetricTemplate"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: MetricTemplateSpec
    status: GenericStatus | None = None


# --- AlertProvider ----------------------------------------------------------------------------


class AlertProviderSpec(Model):
    """AlertProviderSpec defines the desired state of a AlertProvider."""

    # Flagger's CRD: the webhook address either inline or in a Secret, never both.
    model_config = ConfigDict(
        json_schema_extra={
            "crd": {
                "oneOf": [
                    {"required": ["type", "address"]},
                    {"required": ["type", "secretRef"]},
                ]
            }
        }
    )

    type: AlertProviderType = Field(description="Type of this provider")
    channel: str | None = Field(default=None, description="Alert channel for this provider")
    username: str | None = Field(default=None, description="Bot username for this provider")
    address: str | None = Field(default=None, description="Hook URL address of this provider")
    proxy: str | None = Field(default=None, description="Http/s proxy of this provider")
    secret_ref: LocalObjectReference | None = Field(
        default=None,
        description="Kubernetes secret reference containing the provider address",
    )

    @property
    def effective_channel(self) -> str:
        return self.channel or "general"

    @property
    def effective_username(self) -> str:
        return self.username or "flagger"


class AlertProvider(Model):
    """AlertProvider is the Schema for the AlertProvider API."""

    api_version: str = naming.API_VERSION
    kind: Literal["AlertProvider"] = "AlertProvider"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: AlertProviderSpec
    status: GenericStatus | None = None
