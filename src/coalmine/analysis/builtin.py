"""The builtin checks `request-success-rate` and `request-duration`: Flagger's PromQL per router.

Each observer is a pair of Go-template queries rendered with the canary's TemplateModel, plus how
to turn the duration result into milliseconds. The queries are Flagger's (whitespace is collapsed
before sending, so the layout below does not matter to Prometheus).

Service targets (see docs/decisions.md, 'Builtin checks for Service targets'): Flagger appends
`:service` to the observer key and most keys then fall back to Istio's queries. coalmine measures the `<service>-canary` copy instead, by the
name each provider reports it under: the destination service for meshes (Istio, Linkerd, OSM),
the backend the route points at for Gateway API (Istio or Contour gateways), Contour, NGINX,
Traefik and Gloo (its generated upstream), the `kuma.io/service` tag for Kuma, because the workload behind a Service target is not named after it. `kubernetes` has no
such query (docs/metrics.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from coalmine.analysis.templates import TemplateModel, render_query
from coalmine.api import providers
from coalmine.api.models import Canary

SUCCESS_RATE = "request-success-rate"
DURATION = "request-duration"
BUILTIN_METRICS = (SUCCESS_RATE, DURATION)

DurationUnit = Literal["ms", "s"]


class BuiltinQueryError(Exception):
    """No builtin query exists for the canary's provider."""


@dataclass(frozen=True)
class Observer:
    """A router's builtin queries. `duration_unit` says what the duration query returns."""

    name: str
    success_rate: str
    duration: str
    duration_unit: DurationUnit = "ms"
    # Skipper route names are built from the names with non-word characters replaced.
    word_encode_model: bool = False


def _ratio(metric: str, filters: str, good: str, window: str = "{{ interval }}") -> str:
    return f"""
    sum(
        rate(
            {metric}{{
                {filters},
                {good}
            }}[{window}]
        )
    )
    /
    sum(
        rate(
            {metric}{{
                {filters}
            }}[{window}]
        )
    )
    * 100"""


def _p99(bucket: str, filters: str, scale: str = "") -> str:
    return f"""
    histogram_quantile(
        0.99,
        sum(
            rate(
                {bucket}{{
                    {filters}
                }}[{{{{ interval }}}}]
            )
        ) by (le)
    ){scale}"""


def _average_ms(sum_metric: str, count_metric: str, filters: str) -> str:
    return f"""
    sum(
        rate(
            {sum_metric}{{
                {filters}
            }}[{{{{ interval }}}}]
        )
    )
    /
    sum(
        rate(
            {count_metric}{{
                {filters}
            }}[{{{{ interval }}}}]
        )
    )
    * 1000"""


def _observer(
    name: str,
    counter: str,
    filters: str,
    good: str,
    bucket: str,
    duration_unit: DurationUnit = "ms",
) -> Observer:
    return Observer(
        name,
        _ratio(counter, filters, good),
        _p99(bucket, filters),
        duration_unit,
    )


_POD = 'kubernetes_namespace="{{ namespace }}",\n                kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"'
_ISTIO = 'reporter="destination",\n                destination_workload_namespace="{{ namespace }}",\n                destination_workload=~"{{ target }}"'
_ISTIO_SERVICE = 'reporter="destination",\n                destination_service_namespace="{{ namespace }}",\n                destination_service_name=~"{{ service }}-canary"'
_LINKERD = 'namespace="{{ namespace }}",\n                deployment=~"{{ target }}",\n                direction="inbound"'
_LINKERD_SERVICE = 'dst_namespace="{{ namespace }}",\n                dst_service=~"{{ service }}-canary",\n                direction="outbound"'
_CONTOUR = 'envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+"'
# Service targets: the `<service>-canary` copy, by the name each router or mesh reports it under.
# OSM's sidecars name an outbound cluster `<namespace>/<service>|<port>`.
_OSM_SERVICE = 'envoy_cluster_name=~"{{ namespace }}/{{ service }}-canary([|][0-9]+)?"'
_NGINX_SERVICE = 'namespace="{{ namespace }}",\n                service="{{ service }}-canary"'
_TRAEFIK_SERVICE = 'service=~"{{ namespace }}-{{ service }}-canary-[0-9a-zA-Z-]+@kubernetescrd"'
# An Istio gateway reports the backend the HTTPRoute sent the request to as its destination.
_ISTIO_GATEWAY = 'reporter="source",\n                destination_service_namespace="{{ namespace }}",\n                destination_service_name=~"{{ service }}-canary"'
_GLOO = (
    'envoy_cluster_name=~"{{ namespace }}-{{ target }}-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+"'
)
_NGINX = 'namespace="{{ namespace }}",\n                ingress="{{ ingress }}",\n                canary!=""'
_TRAEFIK = 'service=~"{{ namespace }}-{{ target }}-canary-[0-9a-zA-Z-]+@kubernetescrd"'
_OSM = 'destination_namespace="{{ namespace }}",\n                destination_kind="Deployment",\n                destination_name="{{ target }}"'
_KUMA = 'service=~"{{ target }}-canary_{{ namespace }}_svc_[0-9a-zA-Z-]+"'
# Gloo and Kuma name what they report after the routed Service (the generated upstream
# `<ns>-<service>-canaryupstream-<port>`, the tag `<service>-canary_<ns>_svc_<port>`); Flagger's
# `{{ target }}` equals it only when the target is named like the apex Service.
_GLOO_SERVICE = _GLOO.replace("{{ target }}", "{{ service }}")
_KUMA_SERVICE = _KUMA.replace("{{ target }}", "{{ service }}")
_APISIX = 'route=~"{{ namespace }}_{{ route }}-{{ target }}-canary_.+"'
_KNATIVE = 'envoy_cluster_name=~"{{ namespace }}/{{ route }}"'
_SKIPPER_ROUTE = (
    '{{- $route := printf "kube(ew)?_%s__%s_canary__.*__%s_canary(_[0-9]+)?" '
    "namespace ingress service }}"
)


def _either(first: str, second: str) -> str:
    """`first`, else `second` (PromQL `or`): one query for two implementations' metric names."""
    return f"({first}\n) or ({second}\n)"


ISTIO = _observer(
    "istio",
    "istio_requests_total",
    _ISTIO,
    'response_code!~"5.*"',
    "istio_request_duration_milliseconds_bucket",
)
ISTIO_SERVICE = _observer(
    "istio",
    "istio_requests_total",
    _ISTIO_SERVICE,
    'response_code!~"5.*"',
    "istio_request_duration_milliseconds_bucket",
)
LINKERD = _observer(
    "linkerd", "response_total", _LINKERD, 'classification!="failure"', "response_latency_ms_bucket"
)
LINKERD_SERVICE = _observer(
    "linkerd",
    "response_total",
    _LINKERD_SERVICE,
    'classification!="failure"',
    "response_latency_ms_bucket",
)
HTTP = Observer(
    "http",
    _ratio("http_request_duration_seconds_count", _POD, 'status!~"5.*"'),
    _p99("http_request_duration_seconds_bucket", _POD),
    "s",
)
APPMESH = _observer(
    "appmesh",
    "envoy_cluster_upstream_rq",
    _POD,
    'envoy_response_code!~"5.*"',
    "envoy_cluster_upstream_rq_time_bucket",
)
CONTOUR = _observer(
    "contour",
    "envoy_cluster_upstream_rq",
    _CONTOUR,
    'envoy_response_code!~"5.*"',
    "envoy_cluster_upstream_rq_time_bucket",
)
GLOO = _observer(
    "gloo",
    "envoy_cluster_upstream_rq",
    _GLOO,
    'envoy_response_code!~"5.*"',
    "envoy_cluster_upstream_rq_time_bucket",
)
NGINX = Observer(
    "nginx",
    _ratio("nginx_ingress_controller_requests", _NGINX, 'status!~"5.*"'),
    _average_ms(
        "nginx_ingress_controller_response_duration_seconds_sum",
        "nginx_ingress_controller_response_duration_seconds_count",
        _NGINX,
    ),
)
SKIPPER = Observer(
    "skipper",
    _SKIPPER_ROUTE
    + _ratio(
        "skipper_response_duration_seconds_bucket",
        'route=~"{{ $route }}",\n                le="+Inf"',
        'code!~"5.."',
    ),
    _SKIPPER_ROUTE
    + _average_ms(
        "skipper_serve_route_duration_seconds_sum",
        "skipper_serve_route_duration_seconds_count",
        'route=~"{{ $route }}"',
    ),
    word_encode_model=True,
)
TRAEFIK = Observer(
    "traefik",
    _ratio(
        "traefik_service_request_duration_seconds_bucket",
        _TRAEFIK + ',\n                le="+Inf"',
        'code!~"5.."',
    ),
    _p99("traefik_service_request_duration_seconds_bucket", _TRAEFIK, " * 1000"),
)
NGINX_SERVICE = Observer(
    "nginx",
    _ratio("nginx_ingress_controller_requests", _NGINX_SERVICE, 'status!~"5.*"'),
    _average_ms(
        "nginx_ingress_controller_response_duration_seconds_sum",
        "nginx_ingress_controller_response_duration_seconds_count",
        _NGINX_SERVICE,
    ),
)
TRAEFIK_SERVICE = Observer(
    "traefik",
    _ratio(
        "traefik_service_request_duration_seconds_bucket",
        _TRAEFIK_SERVICE + ',\n                le="+Inf"',
        'code!~"5.."',
    ),
    _p99("traefik_service_request_duration_seconds_bucket", _TRAEFIK_SERVICE, " * 1000"),
)
OSM_SERVICE = _observer(
    "osm",
    "envoy_cluster_upstream_rq",
    _OSM_SERVICE,
    'envoy_response_code!~"5.*"',
    "envoy_cluster_upstream_rq_time_bucket",
)
# Gateway API for Service targets: an Istio gateway's series, else a Contour gateway's (both name
# the backend Service). Envoy Gateway puts every backend of a rule into one cluster, so nothing it
# reports isolates the canary copy: that query finds no values, and the docs point to templateRef.
GATEWAY_SERVICE = Observer(
    "gatewayapi",
    _either(
        _ratio("istio_requests_total", _ISTIO_GATEWAY, 'response_code!~"5.*"'),
        _ratio("envoy_cluster_upstream_rq", _CONTOUR, 'envoy_response_code!~"5.*"'),
    ),
    _either(
        _p99("istio_request_duration_milliseconds_bucket", _ISTIO_GATEWAY),
        _p99("envoy_cluster_upstream_rq_time_bucket", _CONTOUR),
    ),
)
OSM = _observer(
    "osm", "osm_request_total", _OSM, 'response_code!~"5.*"', "osm_request_duration_ms_bucket"
)
KUMA = _observer(
    "kuma",
    "envoy_cluster_upstream_rq",
    _KUMA,
    'envoy_response_code!~"5.*"',
    "envoy_cluster_upstream_rq_time_bucket",
)
GLOO_SERVICE = _observer(
    "gloo",
    "envoy_cluster_upstream_rq",
    _GLOO_SERVICE,
    'envoy_response_code!~"5.*"',
    "envoy_cluster_upstream_rq_time_bucket",
)
KUMA_SERVICE = _observer(
    "kuma",
    "envoy_cluster_upstream_rq",
    _KUMA_SERVICE,
    'envoy_response_code!~"5.*"',
    "envoy_cluster_upstream_rq_time_bucket",
)
APISIX = Observer(
    "apisix",
    _ratio("apisix_http_status", _APISIX, 'code!~"5.."'),
    _p99("apisix_http_latency_bucket", 'type=~"request",\n                    ' + _APISIX),
)
KNATIVE = _observer(
    "knative",
    "envoy_cluster_upstream_rq",
    _KNATIVE,
    'envoy_response_code!~"5.*"',
    "envoy_cluster_upstream_rq_time_bucket",
)


# The provider table's `observer` names → (workload queries, Service-copy queries).
_OBSERVERS: dict[str, tuple[Observer, Observer]] = {
    "istio": (ISTIO, ISTIO_SERVICE),
    "linkerd": (LINKERD, LINKERD_SERVICE),
    "http": (HTTP, HTTP),
    "appmesh": (APPMESH, APPMESH),
    "contour": (CONTOUR, CONTOUR),
    "gloo": (GLOO, GLOO_SERVICE),
    "nginx": (NGINX, NGINX),
    "skipper": (SKIPPER, SKIPPER),
    "traefik": (TRAEFIK, TRAEFIK),
    "osm": (OSM, OSM),
    "kuma": (KUMA, KUMA_SERVICE),
    "apisix": (APISIX, APISIX),
    "knative": (KNATIVE, KNATIVE),
}


def observer_key(canary: Canary, mesh_provider: str = "") -> str:
    """Flagger's observer selection key: global provider, replaced by `spec.provider` (unless the
    global one is Linkerd), `:service` appended for core Service targets."""
    key = mesh_provider or ""
    if "crossover" in key:
        key = "crossover"
    if canary.spec.provider:
        key = "linkerd" if "linkerd" in (mesh_provider or "") else canary.spec.provider
    if canary.spec.target_ref.is_core_service:
        key = f"{key}:service"
    return key


def observer_for(key: str) -> Observer:
    """The observer for a selection key. `<provider>:service` uses that provider's own queries."""
    service = key.endswith(":service")
    base = key.removesuffix(":service")
    if service:
        observer = _service_observer(base)
        if observer is not None:
            return observer
    info = providers.lookup(base) or _by_family(base)
    if info is not None:
        workload, service_copy = _OBSERVERS[info.observer]
        return service_copy if service else workload
    if base in ("linkerd", "smi:linkerd"):
        return LINKERD_SERVICE if service else LINKERD
    # Flagger's default: Istio, and the mesh providers that follow Istio's metrics (SMI, the
    # retired crossover) and an empty global provider.
    if base in ("", "istio", "crossover") or base.startswith("smi"):
        return ISTIO_SERVICE if service else ISTIO
    raise BuiltinQueryError(
        f"no builtin metrics for provider {base!r}; use a MetricTemplate (templateRef) instead"
    )


def _by_family(base: str) -> providers.ProviderInfo | None:
    """Flagger's observer factory matches `appmesh`, `gloo` and `gatewayapi` by prefix."""
    family = providers.parse(base).name if base else ""
    if family in ("appmesh", "gloo", "gatewayapi"):
        return next(row for row in providers.PROVIDERS.values() if row.family == family)
    return None


def _service_observer(base: str) -> Observer | None:
    """The queries that measure a Service target's `<service>-canary` copy, when they differ from
    the workload ones. `kubernetes` has none: no router reports per Service, and the pods are
    named after their own workloads (the controller refuses such a canary at init)."""
    if base == "kubernetes":
        raise BuiltinQueryError(
            "no builtin metrics can isolate the canary copy of a Service target with provider "
            "kubernetes; use a MetricTemplate (templateRef) that selects the new version's pods"
        )
    if base.startswith("gatewayapi"):
        return GATEWAY_SERVICE
    if base.startswith("gloo"):
        return GLOO_SERVICE
    services = {
        "nginx": NGINX_SERVICE,
        "traefik": TRAEFIK_SERVICE,
        "osm": OSM_SERVICE,
        "kuma": KUMA_SERVICE,
    }
    return services.get(base)


def _word_encoded(model: TemplateModel) -> TemplateModel:
    def encode(value: str) -> str:
        return re.sub(r"\W", "_", value)

    return TemplateModel(
        name=encode(model.name),
        namespace=encode(model.namespace),
        target=encode(model.target),
        service=encode(model.service),
        ingress=encode(model.ingress),
        route=model.route,
        interval=model.interval,
        variables=model.variables,
    )


def builtin_query(observer: Observer, metric: str, model: TemplateModel) -> str:
    """The rendered PromQL of a builtin metric for a canary's model."""
    if metric not in BUILTIN_METRICS:
        raise BuiltinQueryError(f"{metric} is not a builtin metric ({', '.join(BUILTIN_METRICS)})")
    if observer.word_encode_model:
        model = _word_encoded(model)
    source = observer.success_rate if metric == SUCCESS_RATE else observer.duration
    return render_query(source, model, f"{observer.name}/{metric}")


def render_builtin(
    canary: Canary,
    metric: str,
    interval: str = "1m",
    mesh_provider: str = "",
    *,
    route: str | None = None,
) -> str:
    """The PromQL coalmine sends for a builtin metric of this canary (provider, target, interval)."""
    observer = observer_for(observer_key(canary, mesh_provider))
    return builtin_query(observer, metric, TemplateModel.for_canary(canary, interval, route=route))
