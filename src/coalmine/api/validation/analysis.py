"""Rules of `spec.analysis`: schedule, weights, metrics, webhooks, alerts, matches, strategy."""

from __future__ import annotations

from collections.abc import Iterable

from coalmine.api.models import (
    BUILTIN_METRICS,
    GO_DURATION_MAX_SECONDS,
    KUBERNETES_PROVIDER_ITERATIONS,
    SUCCESS_RATE_METRIC,
    Canary,
    CanaryAnalysis,
    CanaryMetric,
    StringMatch,
    duration_seconds,
)
from coalmine.api.validation.baseline import baseline_problems
from coalmine.api.validation.problems import Problem, is_http_url, key_path, show
from coalmine.api.validation.semantics import (
    metric_semantics_problems,
    scoring_problems,
    uses_new_semantics,
)

# What a provider's router can do (A/B, mirroring, session affinity) is judged by the routers'
# compatibility() from the provider table (`coalmine.api.providers`), not here: one verdict.


# Sensible maximums (docs/decisions.md): far beyond any working analysis, short of typos.
MAX_ANALYSIS_INTERVAL = 24 * 3600.0
MAX_WEBHOOK_TIMEOUT = 24 * 3600.0
MAX_METRIC_INTERVAL = 30 * 24 * 3600.0


def duration_problems(path: str, text: str, maximum: float, *, unparsable: str) -> list[Problem]:
    """A duration Go cannot hold or above `maximum` is an error; one Go cannot parse, a warning."""
    seconds = duration_seconds(text)
    if seconds is not None and seconds > GO_DURATION_MAX_SECONDS:
        return [
            Problem(
                path,
                f"{show(text)} does not fit a Go duration (about 292 years at most), so "
                f"Flagger cannot parse it; the maximum here is {format_duration(maximum)}",
            )
        ]
    if seconds is None:
        return [Problem(path, f"{show(text)} {unparsable}", "warning")]
    if seconds > maximum:
        return [
            Problem(path, f"{show(text)} is more than the maximum of {format_duration(maximum)}")
        ]
    return []


def format_duration(seconds: float) -> str:
    """`86400` → `24h`, `90` → `1m30s` (whole seconds, Go's notation)."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{secs}s" if secs or not text else "")


def analysis_problems(
    canary: Canary, analysis: CanaryAnalysis, provider: str | None
) -> list[Problem]:
    problems: list[Problem] = []
    prefix = "spec.analysis"

    # Flagger's CRD: interval and threshold, and exactly one of iterations/stepWeight/stepWeights.
    if analysis.interval is None:
        problems.append(Problem(f"{prefix}.interval", "required"))
    else:
        problems.extend(
            duration_problems(
                f"{prefix}.interval",
                analysis.interval,
                MAX_ANALYSIS_INTERVAL,
                unparsable="is not a Go duration; 60s is used",
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
    problems.extend(baseline_problems(canary, analysis))
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


def duplicates(kind: str, names: Iterable[str]) -> list[Problem]:
    seen: dict[str, int] = {}
    problems: list[Problem] = []
    for index, name in enumerate(names):
        if name in seen:
            problems.append(
                Problem(
                    f"spec.analysis.{kind}[{index}].name",
                    f"duplicate name {show(name)} (also used by {kind}[{seen[name]}])",
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
                    f"metric {show(metric.name)} needs a templateRef or a query "
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
        if not uses_new_semantics(metric):
            problems.extend(_threshold_problems(path, metric))
        problems.extend(metric_semantics_problems(path, metric))
        if metric.interval is not None:
            problems.extend(
                duration_problems(
                    f"{path}.interval",
                    metric.interval,
                    MAX_METRIC_INTERVAL,
                    unparsable="is not a Go duration (the query window is probably invalid)",
                )
            )
    problems.extend(duplicates("metrics", (metric.name for metric in metrics)))
    problems.extend(scoring_problems(analysis))
    return problems


def _threshold_problems(path: str, metric: CanaryMetric) -> list[Problem]:
    """Checks that can never fail, or fail on any positive value (Flagger's evaluation)."""
    bounds = metric.threshold_range
    name = show(metric.name)
    if bounds is not None:
        if bounds.min is None and bounds.max is None:
            return [
                Problem(
                    f"{path}.thresholdRange",
                    f"metric {name} sets neither min nor max: the check can never fail",
                    "warning",
                )
            ]
        return []
    builtin_success_rate = (
        metric.name == SUCCESS_RATE_METRIC and not metric.query and metric.template_ref is None
    )
    if builtin_success_rate:
        if metric.threshold is None or metric.threshold <= 0:
            return [
                Problem(
                    path,
                    f"metric {name} has no thresholdRange: the check can never fail "
                    "(set thresholdRange.min, e.g. 99)",
                    "warning",
                )
            ]
        return []
    if metric.threshold is None:
        return [
            Problem(
                path,
                f"metric {name} has no thresholdRange: "
                "the check fails whenever the value is above 0",
                "warning",
            )
        ]
    return []


def _webhook_problems(analysis: CanaryAnalysis) -> list[Problem]:
    problems: list[Problem] = []
    webhooks = analysis.webhooks or []
    for index, hook in enumerate(webhooks):
        if hook.timeout is not None:
            problems.extend(
                duration_problems(
                    f"spec.analysis.webhooks[{index}].timeout",
                    hook.timeout,
                    MAX_WEBHOOK_TIMEOUT,
                    unparsable="is not a Go duration; the default timeout is used",
                )
            )
        if not is_http_url(hook.url):
            problems.append(
                Problem(
                    f"spec.analysis.webhooks[{index}].url",
                    f"must be an absolute http or https URL, got {show(hook.url)}",
                )
            )
        if hook.retries is not None and hook.retries < 0:
            problems.append(
                Problem(
                    f"spec.analysis.webhooks[{index}].retries",
                    f"must not be negative, got {hook.retries}",
                )
            )
    problems.extend(duplicates("webhooks", (hook.name for hook in webhooks)))
    return problems


def _alert_problems(analysis: CanaryAnalysis) -> list[Problem]:
    alerts = analysis.alerts or []
    return duplicates("alerts", (alert.name for alert in alerts))


def string_match_problems(
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
                string_match_problems(
                    f"{path}.headers{key_path(name)}",
                    match,
                    allowed=header_kinds,
                    required=True,
                )
            )
        for name, match in (condition.query_params or {}).items():
            problems.extend(
                string_match_problems(
                    f"{path}.queryParams{key_path(name)}",
                    match,
                    allowed=param_kinds,
                    required=False,
                )
            )
    return problems


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
    if analysis.mirror and strategy == "ab-testing":
        problems.append(
            Problem(f"{prefix}.mirror", "ignored for A/B testing (match is set)", "warning")
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
        if provider == "gatewayapi:v1beta1" and affinity.primary_cookie_name:
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
