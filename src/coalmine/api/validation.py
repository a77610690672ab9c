"""Reading Flagger manifests into models, with problems that name the field and the reason.

Everything a user can write wrong ends up as a `Problem` with a path such as
`spec.analysis.stepWeights[2]`, never as a pydantic message or an exception other than
`ManifestError`. Two severities:

* `error`: the object cannot work (Flagger's CRD schema or controller would refuse it, or the run
  would never progress); the controller does not run such a canary.
* `warning`: the object works but probably not as its author expects (a field that is ignored, a
  value that is capped). Flagger manifests that work under Flagger never get an error for a rule of
  ours alone.

`parse_*` raise `ManifestError` when there is an error; `inspect_object` returns every problem
(warnings included) without raising, for callers that report warnings too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, cast
from urllib.parse import urlsplit

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from coalmine.api import naming
from coalmine.api.models import (
    BUILTIN_METRICS,
    CORE_SERVICE_API_VERSIONS,
    DURATION_PATTERN,
    KNATIVE_API_VERSION,
    KUBERNETES_PROVIDER_ITERATIONS,
    AlertProvider,
    Canary,
    CanaryAnalysis,
    MetricTemplate,
    Model,
    StringMatch,
    canonical_provider,
    parse_go_duration,
)

Severity = Literal["error", "warning"]
FlaggerObject = Canary | MetricTemplate | AlertProvider
_M = TypeVar("_M", bound=Model)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a manifest: where (a dotted path into the object) and why."""

    path: str
    reason: str
    severity: Severity = "error"

    def __str__(self) -> str:
        if self.severity == "warning":
            return f"{self.path}: warning: {self.reason}"
        return f"{self.path}: {self.reason}"


class ManifestError(ValueError):
    """A manifest that cannot be used; `problems` lists every problem found (warnings included)."""

    def __init__(self, problems: Sequence[Problem], *, subject: str = "manifest") -> None:
        self.problems: list[Problem] = list(problems)
        self.subject = subject
        super().__init__(str(self))

    @property
    def errors(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.severity == "error"]

    def __str__(self) -> str:
        lines = [f"{self.subject} is invalid:"]
        lines.extend(f"  {problem}" for problem in self.problems)
        return "\n".join(lines)


def summarize_problems(problems: Sequence[Problem], *, limit: int = 1024) -> str:
    """One line for a status condition or an event: errors first, `(and N more)` past `limit`.

    Kubernetes truncates long event messages; this keeps whole problems and says what is left out.
    """
    ordered = [p for p in problems if p.severity == "error"] + [
        p for p in problems if p.severity == "warning"
    ]
    shown: list[str] = []
    for position, problem in enumerate(ordered):
        rest = len(ordered) - position
        candidate = "; ".join([*shown, str(problem)])
        suffix = f" (and {rest - 1} more)" if rest > 1 else ""
        if shown and len(candidate) + len(suffix) > limit:
            return "; ".join(shown) + f" (and {rest} more)"
        shown.append(str(problem))
    return "; ".join(shown)


@dataclass(frozen=True)
class Inspection:
    """What `inspect_object` found: the model (None when it has errors or is not ours) and problems."""

    kind: str | None
    obj: FlaggerObject | None
    problems: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def errors(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.severity == "warning"]


FLAGGER_KINDS: tuple[str, ...] = (
    naming.CANARY_KIND,
    naming.METRIC_TEMPLATE_KIND,
    naming.ALERT_PROVIDER_KIND,
)
_MODELS: dict[str, type[Model]] = {
    naming.CANARY_KIND: Canary,
    naming.METRIC_TEMPLATE_KIND: MetricTemplate,
    naming.ALERT_PROVIDER_KIND: AlertProvider,
}
_SERVED_VERSIONS: dict[str, tuple[str, ...]] = {
    naming.CANARY_KIND: (naming.VERSION, naming.LEGACY_VERSION),
    naming.METRIC_TEMPLATE_KIND: (naming.VERSION,),
    naming.ALERT_PROVIDER_KIND: (naming.VERSION,),
}


# --- entry points -------------------------------------------------------------------------------


def inspect_object(
    doc: object,
    *,
    no_cross_namespace_refs: bool = False,
    mesh_provider: str | None = None,
) -> Inspection:
    """Every problem of one decoded YAML/JSON document; `kind` is None for objects that are not ours.

    `mesh_provider` is the controller's `--mesh-provider` (used for canaries without
    `spec.provider`); when None, provider-specific rules only apply to canaries that name one.
    """
    if doc is None:
        return Inspection(kind=None, obj=None)
    if not isinstance(doc, Mapping):
        return Inspection(
            kind=None,
            obj=None,
            problems=(Problem("document", f"must be an object, got {_show(doc)}"),),
        )
    kind = doc.get("kind")
    api_version = doc.get("apiVersion")
    group, _, version = api_version.partition("/") if isinstance(api_version, str) else ("", "", "")
    if kind not in FLAGGER_KINDS:
        if group == naming.GROUP:
            expected = ", ".join(FLAGGER_KINDS)
            return Inspection(
                kind=str(kind),
                obj=None,
                problems=(
                    Problem(
                        "kind", f"must be one of {expected} for {naming.GROUP}, got {_show(kind)}"
                    ),
                ),
            )
        return Inspection(kind=None, obj=None)
    kind = cast(str, kind)
    if not isinstance(api_version, str):
        return Inspection(kind=kind, obj=None, problems=(Problem("apiVersion", "required"),))
    if group != naming.GROUP:
        # A Canary of another project (e.g. a different CRD group): not ours to judge.
        return Inspection(kind=None, obj=None)
    if version not in _SERVED_VERSIONS[kind]:
        return Inspection(
            kind=kind,
            obj=None,
            problems=(
                Problem(
                    "apiVersion",
                    f"{api_version} is not served for {kind}; use {naming.API_VERSION}",
                ),
            ),
        )

    problems: list[Problem] = []
    data = dict(doc)
    data["apiVersion"] = naming.API_VERSION
    renamed_analysis = False
    if kind == naming.CANARY_KIND:
        data, renamed_analysis = _convert_canary_analysis(data, version, problems)

    model_class = _MODELS[kind]
    obj: Model | None
    try:
        obj = model_class.model_validate(data)
    except ValidationError as exc:
        problems.extend(translate_validation_error(exc))
        obj = None

    problems.extend(_check_metadata(doc))
    if isinstance(obj, Canary):
        problems.extend(
            validate_canary(
                obj, no_cross_namespace_refs=no_cross_namespace_refs, mesh_provider=mesh_provider
            )
        )
    elif isinstance(obj, MetricTemplate):
        problems.extend(validate_metric_template(obj))
    elif isinstance(obj, AlertProvider):
        problems.extend(validate_alert_provider(obj))

    if renamed_analysis:
        problems = [_rename_analysis_path(problem) for problem in problems]
    has_errors = any(problem.severity == "error" for problem in problems)
    result = None if has_errors else cast(FlaggerObject | None, obj)
    return Inspection(kind=kind, obj=result, problems=tuple(problems))


def parse_object(
    doc: object,
    *,
    no_cross_namespace_refs: bool = False,
    mesh_provider: str | None = None,
) -> FlaggerObject | None:
    """The Canary, MetricTemplate or AlertProvider in `doc`; None for other kinds.

    Raises ManifestError when the object has an error-level problem.
    """
    inspection = inspect_object(
        doc, no_cross_namespace_refs=no_cross_namespace_refs, mesh_provider=mesh_provider
    )
    if inspection.errors:
        raise ManifestError(inspection.problems, subject=_subject(doc))
    return inspection.obj


def parse_canary(
    doc: Mapping[str, Any],
    *,
    no_cross_namespace_refs: bool = False,
    mesh_provider: str | None = None,
) -> Canary:
    """A Canary (v1beta1, or v1alpha3 converted to v1beta1), or ManifestError."""
    return _parse_kind(
        doc,
        Canary,
        no_cross_namespace_refs=no_cross_namespace_refs,
        mesh_provider=mesh_provider,
    )


def parse_metric_template(doc: Mapping[str, Any]) -> MetricTemplate:
    """A MetricTemplate, or ManifestError."""
    return _parse_kind(doc, MetricTemplate)


def parse_alert_provider(doc: Mapping[str, Any]) -> AlertProvider:
    """An AlertProvider, or ManifestError."""
    return _parse_kind(doc, AlertProvider)


def _parse_kind(
    doc: Mapping[str, Any],
    model_class: type[_M],
    *,
    no_cross_namespace_refs: bool = False,
    mesh_provider: str | None = None,
) -> _M:
    expected_kind = cast(str, model_class.model_fields["kind"].default)
    if not isinstance(doc, Mapping):
        raise ManifestError([Problem("document", f"must be an object, got {_show(doc)}")])
    data = dict(doc)
    data.setdefault("apiVersion", naming.API_VERSION)
    data.setdefault("kind", expected_kind)
    if data["kind"] != expected_kind:
        raise ManifestError(
            [Problem("kind", f"must be {expected_kind}, got {_show(data['kind'])}")],
            subject=_subject(doc),
        )
    inspection = inspect_object(
        data, no_cross_namespace_refs=no_cross_namespace_refs, mesh_provider=mesh_provider
    )
    if inspection.errors or inspection.obj is None:
        problems = inspection.problems or (
            Problem("apiVersion", f"must be {naming.API_VERSION}, got {_show(data['apiVersion'])}"),
        )
        raise ManifestError(problems, subject=_subject(doc))
    return cast(_M, inspection.obj)


def _subject(doc: object) -> str:
    if not isinstance(doc, Mapping):
        return "manifest"
    kind = doc.get("kind") if isinstance(doc.get("kind"), str) else "object"
    metadata = doc.get("metadata")
    name = namespace = None
    if isinstance(metadata, Mapping):
        name = metadata.get("name") if isinstance(metadata.get("name"), str) else None
        namespace = (
            metadata.get("namespace") if isinstance(metadata.get("namespace"), str) else None
        )
    if name and namespace:
        return f"{kind} {namespace}/{name}"
    if name:
        return f"{kind} {name}"
    return str(kind)


# --- v1alpha3 -----------------------------------------------------------------------------------


def _convert_canary_analysis(
    data: dict[str, Any], version: str, problems: list[Problem]
) -> tuple[dict[str, Any], bool]:
    """Moves the v1alpha3 `canaryAnalysis` to `analysis`, the way Flagger falls back to it.

    Returns the converted document and whether problem paths must name `canaryAnalysis` again.
    """
    spec = data.get("spec")
    if not isinstance(spec, Mapping) or "canaryAnalysis" not in spec:
        return data, False
    spec = dict(spec)
    legacy = spec.pop("canaryAnalysis")
    data["spec"] = spec
    if "analysis" in spec:
        problems.append(
            Problem(
                "spec.canaryAnalysis",
                "ignored because spec.analysis is set (canaryAnalysis is the v1alpha3 name)",
                "warning",
            )
        )
        return data, False
    spec["analysis"] = legacy
    if version != naming.LEGACY_VERSION:
        problems.append(
            Problem(
                "spec.canaryAnalysis",
                "deprecated name of spec.analysis (flagger.app/v1alpha3); read as spec.analysis",
                "warning",
            )
        )
    return data, True


def _rename_analysis_path(problem: Problem) -> Problem:
    if problem.path == "spec.analysis" or problem.path.startswith(
        ("spec.analysis.", "spec.analysis[")
    ):
        path = "spec.canaryAnalysis" + problem.path[len("spec.analysis") :]
        return Problem(path, problem.reason, problem.severity)
    return problem


# --- pydantic errors → problems ---------------------------------------------------------------

_UNION_TAGS = {"int": "an integer", "str": "a string", "float": "a number", "bool": "a boolean"}
_TYPE_NOUNS = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "string_type": "a string",
    "bool_type": "a boolean",
    "bool_parsing": "a boolean",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "dict_type": "an object",
    "mapping_type": "an object",
    "list_type": "a list",
    "tuple_type": "a list",
    "iterable_type": "a list",
}
_SAFE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def format_path(loc: Iterable[str | int]) -> str:
    """`("spec", "analysis", "stepWeights", 2)` → `spec.analysis.stepWeights[2]`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _SAFE_KEY.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text or "document"


def _show(value: object, limit: int = 60) -> str:
    """A short JSON-like rendering of a user's value, bounded however large or deep it is."""
    text = _render(value, limit + 1, 0)
    # One problem is one line: characters such as U+2028 would split it.
    text = "".join(char if char.isprintable() else f"\\u{ord(char):04x}" for char in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _render(value: object, budget: int, depth: int) -> str:
    if isinstance(value, Mapping | list | tuple):
        if depth >= 4:
            return "…"
        is_map = isinstance(value, Mapping)
        items = value.items() if isinstance(value, Mapping) else enumerate(value)
        parts: list[str] = []
        used = 2
        for key, item in items:
            part = _render(item, budget - used, depth + 1)
            if is_map:
                part = f"{_render(str(key), budget - used, depth + 1)}: {part}"
            parts.append(part)
            used += len(part) + 2
            if used > budget:
                break
        joined = ", ".join(parts)
        return f"{{{joined}}}" if is_map else f"[{joined}]"
    if isinstance(value, str) and len(value) > budget:
        value = value[:budget]
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)[:budget]


def translate_validation_error(exc: ValidationError) -> list[Problem]:
    """Our path/reason form of pydantic's errors (union alternatives folded into one problem)."""
    problems: list[Problem] = []
    union_nouns: dict[str, list[str]] = {}
    union_inputs: dict[str, object] = {}
    for error in exc.errors():
        loc = list(error["loc"])
        if len(loc) >= 2 and isinstance(loc[-1], str) and loc[-1] in _UNION_TAGS:
            tag = cast(str, loc.pop())
            path = format_path(loc)
            union_nouns.setdefault(path, []).append(_UNION_TAGS[tag])
            union_inputs[path] = error["input"]
            continue
        if loc and loc[-1] == "[key]":
            loc.pop()
            problems.append(
                Problem(format_path(loc[:-1]), f"keys must be strings, got {_show(loc[-1])}")
            )
            continue
        problems.append(Problem(format_path(loc), _reason(error)))
    for path, nouns in union_nouns.items():
        problems.append(
            Problem(path, f"must be {' or '.join(nouns)}, got {_show(union_inputs[path])}")
        )
    return problems


def _reason(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    value = error["input"]
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind in _TYPE_NOUNS:
        return f"must be {_TYPE_NOUNS[kind]}, got {_show(value)}"
    if kind == "literal_error":
        expected = re.sub(r"'([^']*)'", r'"\1"', str(ctx.get("expected", "")))
        return f"must be one of {expected}, got {_show(value)}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}, got {_show(value)}"
    if kind == "greater_than":
        return f"must be greater than {ctx.get('gt')}, got {_show(value)}"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}, got {_show(value)}"
    if kind == "less_than":
        return f"must be less than {ctx.get('lt')}, got {_show(value)}"
    if kind == "too_long":
        unit = "characters" if isinstance(value, str) else "items"
        return f"must have at most {ctx.get('max_length')} {unit}"
    if kind == "too_short":
        unit = "characters" if isinstance(value, str) else "items"
        minimum = ctx.get("min_length")
        return "must not be empty" if minimum == 1 else f"must have at least {minimum} {unit}"
    if kind == "string_pattern_mismatch":
        if ctx.get("pattern") == DURATION_PATTERN:
            return f"must be a duration such as 30s or 1m, got {_show(value)}"
        return f"must match {ctx.get('pattern')}, got {_show(value)}"
    message = str(error.get("msg", "is invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return f"is invalid ({message})"


# --- rules for every kind -------------------------------------------------------------------------


def _check_metadata(doc: Mapping[Any, Any]) -> list[Problem]:
    metadata = doc.get("metadata")
    if metadata is None:
        return [Problem("metadata.name", "required")]
    if not isinstance(metadata, Mapping):
        return []  # reported by the model as "must be an object"
    if not metadata.get("name") and not metadata.get("generateName"):
        return [Problem("metadata.name", "required")]
    return []


def _is_http_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


# --- Canary ---------------------------------------------------------------------------------------

_GATEWAY_API = ("gatewayapi:v1", "gatewayapi:v1beta1")
_SESSION_AFFINITY_PROVIDERS = ("istio", *_GATEWAY_API)
_MIRROR_PROVIDERS = ("istio", *_GATEWAY_API)
_AB_PROVIDERS = ("istio", "appmesh", "appmesh:v1beta2", "nginx", "contour", "gloo", *_GATEWAY_API)


def effective_provider(canary: Canary, mesh_provider: str | None = None) -> str | None:
    """`spec.provider`, else the controller's mesh provider (unknown values mean Istio, as in Flagger)."""
    if canary.spec.provider:
        return canary.spec.provider
    if mesh_provider:
        return canonical_provider(mesh_provider) or "istio"
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
        problems.extend(_analysis_problems(canary, analysis, provider))
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
                    f"{_show(target.api_version)} is neither v1 (core/v1) nor {KNATIVE_API_VERSION}; "
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
                f"{_show(target.api_version)} is not apps/v1; the {target.kind} is read as apps/v1",
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
                f"{_show(scaler.api_version)} is read as autoscaling/v2 "
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
                    _string_match_problems(
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
                    _string_match_problems(
                        f"{path}.{wire_name}{_key(key)}", match, allowed=istio_kinds, required=False
                    )
                )
    cors = service.cors_policy if service else None
    for index, origin in enumerate((cors.allow_origins or []) if cors else []):
        problems.extend(
            _string_match_problems(
                f"spec.service.corsPolicy.allowOrigins[{index}]",
                origin,
                allowed=istio_kinds,
                required=True,
            )
        )
    return problems


def _provider_problems(canary: Canary, provider: str | None) -> list[Problem]:
    problems: list[Problem] = []
    spec = canary.spec
    service = spec.service
    if provider is None:
        return problems
    if provider in _GATEWAY_API and (service is None or not service.gateway_refs):
        problems.append(
            Problem(
                "spec.service.gatewayRefs",
                "GatewayRefs must be specified when using Gateway API as a provider.",
            )
        )
    if provider in ("nginx", "skipper") and spec.ingress_ref is None:
        problems.append(Problem("spec.ingressRef", f"required by the {provider} provider"))
    if provider == "apisix" and spec.route_ref is None:
        problems.append(Problem("spec.routeRef", "required by the apisix provider"))
    if provider == "appmesh" and (service is None or not service.mesh_name):
        problems.append(
            Problem("spec.service.meshName", "required by the appmesh (v1beta1) provider")
        )
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


def _analysis_problems(
    canary: Canary, analysis: CanaryAnalysis, provider: str | None
) -> list[Problem]:
    problems: list[Problem] = []
    prefix = "spec.analysis"

    # Flagger's CRD: interval and threshold, and exactly one of iterations/stepWeight/stepWeights.
    if analysis.interval is None:
        problems.append(Problem(f"{prefix}.interval", "required"))
    elif parse_go_duration(analysis.interval) is None:
        problems.append(
            Problem(
                f"{prefix}.interval",
                f"{_show(analysis.interval)} is not a Go duration; 60s is used",
                "warning",
            )
        )
    if analysis.threshold is None:
        problems.append(Problem(f"{prefix}.threshold", "required"))
    elif analysis.threshold < 1:
        problems.append(
            Problem(
                f"{prefix}.threshold",
                f"values below 1 count as 1, got {analysis.threshold}",
                "warning",
            )
        )
    chosen = [
        name
        for name, value in (
            ("iterations", analysis.iterations),
            ("stepWeight", analysis.step_weight),
            ("stepWeights", analysis.step_weights),
        )
        if value is not None
    ]
    if not chosen:
        problems.append(Problem(prefix, "one of iterations, stepWeight or stepWeights is required"))
    elif len(chosen) > 1:
        problems.append(
            Problem(
                prefix,
                "iterations, stepWeight and stepWeights are mutually exclusive, found "
                + " and ".join(chosen),
            )
        )

    problems.extend(_weight_problems(analysis))
    problems.extend(_metric_problems(analysis))
    problems.extend(_webhook_problems(analysis))
    problems.extend(_alert_problems(analysis))
    problems.extend(_match_problems(analysis, provider))
    problems.extend(_strategy_problems(canary, analysis, provider))
    return problems


def _weight_problems(analysis: CanaryAnalysis) -> list[Problem]:
    problems: list[Problem] = []
    prefix = "spec.analysis"
    if analysis.iterations is not None and analysis.iterations < 1:
        problems.append(
            Problem(f"{prefix}.iterations", f"must be at least 1, got {analysis.iterations}")
        )
    if analysis.step_weight is not None:
        if analysis.step_weight < 1:
            problems.append(
                Problem(
                    f"{prefix}.stepWeight",
                    f"must be between 1 and 100, got {analysis.step_weight}",
                )
            )
        elif analysis.step_weight > 100:
            problems.append(
                Problem(
                    f"{prefix}.stepWeight",
                    f"values above 100 are capped at 100, got {analysis.step_weight}",
                    "warning",
                )
            )
    if analysis.max_weight is not None:
        if analysis.max_weight > 100 or analysis.max_weight < 0:
            problems.append(
                Problem(
                    f"{prefix}.maxWeight",
                    f"must be between 1 and 100, got {analysis.max_weight}",
                )
            )
        elif analysis.max_weight == 0:
            problems.append(Problem(f"{prefix}.maxWeight", "0 means the default, 100", "warning"))
        if analysis.step_weights:
            problems.append(
                Problem(
                    f"{prefix}.maxWeight",
                    "ignored because stepWeights is set (the last step is the maximum)",
                    "warning",
                )
            )
    steps = analysis.step_weights
    if steps is not None:
        if not steps:
            problems.append(Problem(f"{prefix}.stepWeights", "must not be empty"))
        last = len(steps) - 1
        for index, step in enumerate(steps):
            path = f"{prefix}.stepWeights[{index}]"
            if step < 1:
                problems.append(Problem(path, f"must be between 1 and 100, got {step}"))
            elif step > 100:
                if index == last:
                    problems.append(
                        Problem(path, f"the last step is capped at 100, got {step}", "warning")
                    )
                else:
                    problems.append(Problem(path, f"must be between 1 and 100, got {step}"))
            if index > 0 and step <= steps[index - 1]:
                problems.append(
                    Problem(
                        path,
                        f"must be greater than the previous step ({step} <= {steps[index - 1]})",
                    )
                )
    if (
        analysis.step_weight_promotion is not None
        and not 0 <= analysis.step_weight_promotion <= 100
    ):
        problems.append(
            Problem(
                f"{prefix}.stepWeightPromotion",
                f"must be between 0 and 100, got {analysis.step_weight_promotion}",
            )
        )
    for name, value in (
        ("primaryReadyThreshold", analysis.primary_ready_threshold),
        ("canaryReadyThreshold", analysis.canary_ready_threshold),
    ):
        if value is not None and not 0 <= value <= 100:
            problems.append(
                Problem(f"{prefix}.{name}", f"must be a percentage between 0 and 100, got {value}")
            )
    return problems


def _duplicates(kind: str, names: Iterable[str]) -> list[Problem]:
    seen: dict[str, int] = {}
    problems: list[Problem] = []
    for index, name in enumerate(names):
        if name in seen:
            problems.append(
                Problem(
                    f"spec.analysis.{kind}[{index}].name",
                    f"duplicate name {_show(name)} (also used by {kind}[{seen[name]}])",
                    "warning",
                )
            )
        else:
            seen[name] = index
    return problems


def _metric_problems(analysis: CanaryAnalysis) -> list[Problem]:
    problems: list[Problem] = []
    metrics = analysis.metrics or []
    for index, metric in enumerate(metrics):
        path = f"spec.analysis.metrics[{index}]"
        if not metric.is_builtin and metric.template_ref is None and not metric.query:
            builtins = " or ".join(BUILTIN_METRICS)
            problems.append(
                Problem(
                    path,
                    f"metric {_show(metric.name)} needs a templateRef or a query "
                    f"(or a builtin name: {builtins})",
                )
            )
        bounds = metric.threshold_range
        if (
            bounds is not None
            and bounds.min is not None
            and bounds.max is not None
            and bounds.min > bounds.max
        ):
            problems.append(
                Problem(
                    f"{path}.thresholdRange",
                    f"min must not be greater than max ({bounds.min:g} > {bounds.max:g})",
                )
            )
        if (
            not metric.is_builtin
            and (bounds is None or (bounds.min is None and bounds.max is None))
            and metric.threshold is None
        ):
            problems.append(
                Problem(
                    path,
                    f"metric {_show(metric.name)} has no thresholdRange: "
                    "the check fails whenever the value is above 0",
                    "warning",
                )
            )
        if metric.interval is not None and parse_go_duration(metric.interval) is None:
            problems.append(
                Problem(
                    f"{path}.interval",
                    f"{_show(metric.interval)} is not a Go duration "
                    "(the query window is probably invalid)",
                    "warning",
                )
            )
    problems.extend(_duplicates("metrics", (metric.name for metric in metrics)))
    return problems


def _webhook_problems(analysis: CanaryAnalysis) -> list[Problem]:
    problems: list[Problem] = []
    webhooks = analysis.webhooks or []
    for index, hook in enumerate(webhooks):
        if not _is_http_url(hook.url):
            problems.append(
                Problem(
                    f"spec.analysis.webhooks[{index}].url",
                    f"must be an absolute http or https URL, got {_show(hook.url)}",
                )
            )
        if hook.retries is not None and hook.retries < 0:
            problems.append(
                Problem(
                    f"spec.analysis.webhooks[{index}].retries",
                    f"must not be negative, got {hook.retries}",
                )
            )
    problems.extend(_duplicates("webhooks", (hook.name for hook in webhooks)))
    return problems


def _alert_problems(analysis: CanaryAnalysis) -> list[Problem]:
    alerts = analysis.alerts or []
    return _duplicates("alerts", (alert.name for alert in alerts))


def _string_match_problems(
    path: str, match: StringMatch, *, allowed: tuple[str, ...], required: bool
) -> list[Problem]:
    problems: list[Problem] = []
    kinds = match.kinds
    for kind in kinds:
        if kind not in allowed:
            problems.append(
                Problem(f"{path}.{kind}", f"not supported here (use {', '.join(allowed)})")
            )
    if len(kinds) > 1:
        problems.append(Problem(path, f"only one of {', '.join(allowed)} may be set"))
    elif required and not kinds:
        problems.append(Problem(path, f"one of {', '.join(allowed)} is required"))
    return problems


def _match_problems(analysis: CanaryAnalysis, provider: str | None) -> list[Problem]:
    problems: list[Problem] = []
    header_kinds = ("exact", "prefix", "suffix", "regex")
    param_kinds = ("exact", "prefix", "regex")
    for index, condition in enumerate(analysis.match or []):
        path = f"spec.analysis.match[{index}]"
        for name, match in (condition.headers or {}).items():
            problems.extend(
                _string_match_problems(
                    f"{path}.headers{_key(name)}",
                    match,
                    allowed=header_kinds,
                    required=True,
                )
            )
        for name, match in (condition.query_params or {}).items():
            problems.extend(
                _string_match_problems(
                    f"{path}.queryParams{_key(name)}", match, allowed=param_kinds, required=False
                )
            )
    return problems


def _key(name: str) -> str:
    return f".{name}" if _SAFE_KEY.match(name) else f"[{json.dumps(name)}]"


def _strategy_problems(
    canary: Canary, analysis: CanaryAnalysis, provider: str | None
) -> list[Problem]:
    problems: list[Problem] = []
    prefix = "spec.analysis"
    strategy = canary.spec.strategy
    if analysis.match and not analysis.iterations:
        problems.append(
            Problem(
                f"{prefix}.match",
                "ignored without iterations (A/B testing runs a number of iterations)",
                "warning",
            )
        )
    if provider == "kubernetes":
        if analysis.match:
            problems.append(
                Problem(
                    f"{prefix}.match",
                    "A/B testing is not supported when using the kubernetes provider",
                    "warning",
                )
            )
        if not analysis.iterations or analysis.iterations < 1:
            field_name = "stepWeights" if analysis.step_weights is not None else "stepWeight"
            problems.append(
                Problem(
                    f"{prefix}.{field_name}",
                    "Progressive traffic is not supported when using the kubernetes provider; "
                    f"iterations {KUBERNETES_PROVIDER_ITERATIONS} is used (Blue/Green)",
                    "warning",
                )
            )
    elif provider is not None and strategy == "ab-testing" and provider not in _AB_PROVIDERS:
        problems.append(
            Problem(
                f"{prefix}.match",
                f"A/B testing is not supported by the {provider} provider",
                "warning",
            )
        )
    if analysis.mirror:
        if strategy == "ab-testing":
            problems.append(
                Problem(f"{prefix}.mirror", "ignored for A/B testing (match is set)", "warning")
            )
        elif provider is not None and provider not in _MIRROR_PROVIDERS:
            problems.append(
                Problem(
                    f"{prefix}.mirror",
                    f"traffic mirroring is not supported by the {provider} provider "
                    "(only istio and gatewayapi)",
                    "warning",
                )
            )
    if analysis.mirror_weight and not analysis.mirror:
        problems.append(
            Problem(f"{prefix}.mirrorWeight", "ignored because mirror is not enabled", "warning")
        )
    affinity = analysis.session_affinity
    if affinity is not None:
        path = f"{prefix}.sessionAffinity"
        if (
            affinity.primary_cookie_name is not None
            and affinity.cookie_name == affinity.primary_cookie_name
        ):
            problems.append(
                Problem(
                    f"{path}.primaryCookieName",
                    "can't use the same cookie name for both primary and cookie name; "
                    "please update them to be different",
                )
            )
        if provider is not None and provider not in _SESSION_AFFINITY_PROVIDERS:
            problems.append(
                Problem(
                    path,
                    f"session affinity is only supported by the istio and gatewayapi providers, "
                    f"not {provider}",
                    "warning",
                )
            )
        elif provider == "gatewayapi:v1beta1" and affinity.primary_cookie_name:
            problems.append(
                Problem(
                    f"{path}.primaryCookieName",
                    "ignored by the gatewayapi:v1beta1 provider",
                    "warning",
                )
            )
        if strategy != "canary":
            problems.append(
                Problem(
                    path,
                    f"only used by the canary strategy (stepWeight/stepWeights), not by {strategy}",
                    "warning",
                )
            )
    return problems


# --- MetricTemplate -------------------------------------------------------------------------------

_ADDRESS_NEEDED = ("influxdb", "graphite", "dynatrace", "splunk")


def validate_metric_template(template: MetricTemplate) -> list[Problem]:
    """Provider-specific needs of a MetricTemplate (Flagger fails at query time without them)."""
    problems: list[Problem] = []
    provider = template.spec.provider
    if not template.spec.query.strip():
        problems.append(Problem("spec.query", "must not be empty"))
    if provider.type == "cloudwatch" and not provider.region:
        problems.append(Problem("spec.provider.region", "required by the cloudwatch provider"))
    if provider.type == "http" and not provider.address:
        problems.append(Problem("spec.provider.address", "required by the http provider"))
    if provider.type in _ADDRESS_NEEDED and not provider.address:
        problems.append(
            Problem(
                "spec.provider.address",
                f"the {provider.type} provider needs an address; queries will fail without one",
                "warning",
            )
        )
    if provider.address and not _is_http_url(provider.address):
        problems.append(
            Problem(
                "spec.provider.address",
                f"must be an absolute http or https URL, got {_show(provider.address)}",
            )
        )
    if provider.headers and provider.type not in ("prometheus", "http"):
        problems.append(
            Problem(
                "spec.provider.headers",
                f"only used by the prometheus provider, not {provider.type}",
                "warning",
            )
        )
    return problems


# --- AlertProvider --------------------------------------------------------------------------------


def validate_alert_provider(provider: AlertProvider) -> list[Problem]:
    """Flagger's schema `oneOf`: exactly one of address and secretRef."""
    problems: list[Problem] = []
    spec = provider.spec
    if spec.address and spec.secret_ref is not None:
        problems.append(
            Problem(
                "spec",
                "address and secretRef are mutually exclusive (Flagger's schema refuses both); "
                "keep secretRef and put the address in the Secret's `address` key",
            )
        )
    elif not spec.address and spec.secret_ref is None:
        problems.append(Problem("spec", "one of address or secretRef is required"))
    if spec.address and not _is_http_url(spec.address):
        problems.append(
            Problem(
                "spec.address",
                f"must be an absolute http or https URL, got {_show(spec.address)}",
            )
        )
    return problems
