"""Cross-field rules of a Canary outside its analysis: target, service, provider, references."""

from __future__ import annotations

from collections.abc import Callable

from coalmine.api.models import (
    CORE_SERVICE_API_VERSIONS,
    KNATIVE_API_VERSION,
    Canary,
)
from coalmine.api.providers import lookup, resolve
from coalmine.api.validation.analysis import analysis_problems, string_match_problems
from coalmine.api.validation.problems import Problem, key_path, show


def effective_provider(canary: Canary, mesh_provider: str | None = None) -> str | None:
    """`spec.provider`, else the controller's mesh provider (unknown values mean Istio, as in Flagger)."""
    if canary.spec.provider:
        return canary.spec.provider
    if mesh_provider:
        return resolve(mesh_provider).name
    return None


def validate_canary(
    canary: Canary,
    *,
    no_cross_namespace_refs: bool = False,
    mesh_provider: str | None = None,
) -> list[Problem]:
    """Cross-field rules of a Canary: Flagger's `verifyCanary`, its CRD `oneOf`, and ours."""
    problems: list[Problem] = []
    spec = canary.spec
    provider = effective_provider(canary, mesh_provider)
    analysis = spec.effective_analysis

    if no_cross_namespace_refs:
        problems.extend(_cross_namespace_problems(canary))
    problems.extend(_target_problems(canary, provider))
    problems.extend(_service_problems(canary))
    problems.extend(_provider_problems(canary, provider))
    if analysis is None:
        problems.append(
            Problem(
                "spec.analysis",
                "absent: every new revision is promoted without analysis "
                "(Flagger's CRD requires spec.analysis)",
                "warning",
            )
        )
    else:
        problems.extend(analysis_problems(canary, analysis, provider))
    return problems


def _cross_namespace_problems(canary: Canary) -> list[Problem]:
    problems: list[Problem] = []
    namespace = canary.namespace
    spec = canary.spec
    upstream = spec.upstream_ref
    if upstream and upstream.namespace and upstream.namespace != namespace:
        problems.append(
            Problem(
                "spec.upstreamRef.namespace",
                f"can't access gloo upstream {upstream.name}.{upstream.namespace}, "
                "cross-namespace references are blocked",
            )
        )
    analysis = spec.effective_analysis
    if analysis is None:
        return problems
    for index, metric in enumerate(analysis.metrics or []):
        ref = metric.template_ref
        if ref and ref.namespace and ref.namespace != namespace:
            problems.append(
                Problem(
                    f"spec.analysis.metrics[{index}].templateRef.namespace",
                    f"can't access metric template {ref.name}.{ref.namespace}, "
                    "cross-namespace references are blocked",
                )
            )
    for index, alert in enumerate(analysis.alerts or []):
        provider_ref = alert.provider_ref
        if provider_ref.namespace and provider_ref.namespace != namespace:
            problems.append(
                Problem(
                    f"spec.analysis.alerts[{index}].providerRef.namespace",
                    f"can't access alert provider {provider_ref.name}.{provider_ref.namespace}, "
                    "cross-namespace references are blocked",
                )
            )
    return problems


def _target_problems(canary: Canary, provider: str | None) -> list[Problem]:
    problems: list[Problem] = []
    spec = canary.spec
    target = spec.target_ref
    if target.is_knative:
        if not spec.provider:
            problems.append(
                Problem(
                    "spec.provider",
                    "required: a Knative Service target needs provider knative "
                    "(the global mesh provider does not count)",
                )
            )
        elif spec.provider != "knative":
            problems.append(
                Problem(
                    "spec.provider",
                    f"can't use {spec.provider} provider with Knative Service as target",
                )
            )
        if spec.autoscaler_ref is not None:
            problems.append(
                Problem("spec.autoscalerRef", "can't use autoscaler with Knative Service")
            )
    elif spec.provider == "knative":
        problems.append(
            Problem(
                "spec.targetRef",
                f"can't use {target.api_version}/{target.kind} as target if provider is set to knative",
            )
        )
    if spec.service is None and not target.is_knative:
        problems.append(Problem("spec.service", f"required for {target.kind} targets"))
    if target.kind == "Service" and not target.is_knative:
        if target.api_version not in CORE_SERVICE_API_VERSIONS:
            problems.append(
                Problem(
                    "spec.targetRef.apiVersion",
                    f"{show(target.api_version)} is neither v1 (core/v1) nor {KNATIVE_API_VERSION}; "
                    "the target is treated as a core/v1 Service",
                    "warning",
                )
            )
        if spec.autoscaler_ref is not None:
            problems.append(
                Problem(
                    "spec.autoscalerRef",
                    "has no effect on a Service target (there are no pods to scale)",
                    "warning",
                )
            )
    elif target.kind in ("Deployment", "DaemonSet") and target.api_version != "apps/v1":
        problems.append(
            Problem(
                "spec.targetRef.apiVersion",
                f"{show(target.api_version)} is not apps/v1; the {target.kind} is read as apps/v1",
                "warning",
            )
        )
    scaler = spec.autoscaler_ref
    if (
        scaler is not None
        and scaler.kind == "HorizontalPodAutoscaler"
        and scaler.api_version != "autoscaling/v2"
    ):
        problems.append(
            Problem(
                "spec.autoscalerRef.apiVersion",
                f"{show(scaler.api_version)} is read as autoscaling/v2 "
                "(the beta HPA versions are not served since Kubernetes 1.26)",
                "warning",
            )
        )
    if scaler is not None and scaler.primary_scaler_queries and scaler.kind != "ScaledObject":
        problems.append(
            Problem(
                "spec.autoscalerRef.primaryScalerQueries",
                "only used with a KEDA ScaledObject",
                "warning",
            )
        )
    replicas = scaler.primary_scaler_replicas if scaler else None
    if (
        replicas is not None
        and replicas.min_replicas is not None
        and replicas.max_replicas is not None
        and replicas.min_replicas > replicas.max_replicas
    ):
        problems.append(
            Problem(
                "spec.autoscalerRef.primaryScalerReplicas",
                f"minReplicas must not be greater than maxReplicas "
                f"({replicas.min_replicas} > {replicas.max_replicas})",
            )
        )
    if spec.progress_deadline_seconds is not None and spec.progress_deadline_seconds < 0:
        problems.append(
            Problem(
                "spec.progressDeadlineSeconds",
                f"must not be negative, got {spec.progress_deadline_seconds}",
            )
        )
    return problems


def _service_problems(canary: Canary) -> list[Problem]:
    problems: list[Problem] = []
    service = canary.spec.service
    for index, mirror in enumerate((service.mirror or []) if service else []):
        ref = mirror.backend_ref
        if not ref.group and (ref.kind or "Service") == "Service" and ref.port is None:
            problems.append(
                Problem(
                    f"spec.service.mirror[{index}].backendRef.port",
                    "Must have port for Service reference",
                )
            )
    istio_kinds = ("exact", "prefix", "regex")
    for index, condition in enumerate((service.match or []) if service else []):
        path = f"spec.service.match[{index}]"
        for name in ("uri", "scheme", "method", "authority"):
            match = getattr(condition, name)
            if match is not None:
                problems.extend(
                    string_match_problems(
                        f"{path}.{name}", match, allowed=istio_kinds, required=False
                    )
                )
        for field_name, wire_name in (
            ("headers", "headers"),
            ("query_params", "queryParams"),
            ("without_headers", "withoutHeaders"),
        ):
            for key, match in (getattr(condition, field_name) or {}).items():
                problems.extend(
                    string_match_problems(
                        f"{path}.{wire_name}{key_path(key)}",
                        match,
                        allowed=istio_kinds,
                        required=False,
                    )
                )
    cors = service.cors_policy if service else None
    for index, origin in enumerate((cors.allow_origins or []) if cors else []):
        problems.extend(
            string_match_problems(
                f"spec.service.corsPolicy.allowOrigins[{index}]",
                origin,
                allowed=istio_kinds,
                required=True,
            )
        )
    return problems


# The fields a provider requires (its row's `requires` in the provider table), and how to tell.
_REQUIRED: dict[str, Callable[[Canary], bool]] = {
    "spec.service.gatewayRefs": lambda c: bool(c.spec.service and c.spec.service.gateway_refs),
    "spec.ingressRef": lambda c: c.spec.ingress_ref is not None,
    "spec.routeRef": lambda c: c.spec.route_ref is not None,
}
_REQUIRED_REASONS = {
    # Flagger's own message.
    "spec.service.gatewayRefs": "GatewayRefs must be specified when using Gateway API as a provider.",
}


def _provider_problems(canary: Canary, provider: str | None) -> list[Problem]:
    problems: list[Problem] = []
    spec = canary.spec
    service = spec.service
    if provider is None:
        return problems
    info = lookup(provider)
    for path in info.requires if info else ():
        if not _REQUIRED[path](canary):
            reason = _REQUIRED_REASONS.get(path, "required by the {provider} provider")
            problems.append(Problem(path, reason.format(provider=info.name if info else provider)))
    if (
        provider == "istio"
        and service is not None
        and service.delegation
        and (service.hosts or service.gateways)
    ):
        problems.append(
            Problem(
                "spec.service.delegation",
                "a delegate VirtualService cannot have hosts and gateways",
            )
        )
    if spec.upstream_ref is not None and provider != "gloo":
        problems.append(
            Problem(
                "spec.upstreamRef", f"only used by the gloo provider, not {provider}", "warning"
            )
        )
    return problems
