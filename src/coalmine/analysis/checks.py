"""The metric checks of one analysis cycle, with Flagger's thresholds and event messages.

Order and messages follow Flagger's `runBuiltinMetricChecks` then `runMetricChecks`: builtin and
inline-query metrics first, in spec order, then MetricTemplate metrics; the first failing check ends
the cycle. MetricTemplates and Secrets come from the caller's cache through `MetricSources`, so this
module does no Kubernetes I/O; all backend I/O goes through providers sharing one HTTP session.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import aiohttp

from coalmine.analysis import (
    AnalysisOutcome,
    AvailabilityOutcome,
    MetricResult,
    MetricSources,
    RecordMetric,
)
from coalmine.analysis.builtin import (
    BUILTIN_METRICS,
    DURATION,
    SUCCESS_RATE,
    BuiltinQueryError,
    builtin_query,
    observer_for,
    observer_key,
)
from coalmine.analysis.judging import (
    RoleTemplateModel,
    aggregated_value,
    judge_metric,
    score_result,
    scored,
)
from coalmine.analysis.providers.base import (
    AnalysisError,
    BackendLimiter,
    MetricProvider,
    NoValuesFound,
    ProviderContext,
)
from coalmine.analysis.providers.prometheus import PrometheusProvider
from coalmine.analysis.providers.registry import provider_for
from coalmine.analysis.record import consecutive_errors
from coalmine.analysis.semantics import apply_semantics
from coalmine.analysis.templates import TemplateError, TemplateModel, go_sprintf, render_query
from coalmine.api.models import Canary, CanaryMetric, MetricTemplateProvider
from coalmine.outbound import redact_url, safe_text
from coalmine.outbound.http import MAX_METRIC_RESPONSE_BYTES

log = logging.getLogger(__name__)

DEFAULT_METRIC_INTERVAL = "1m"
NO_USABLE_METRIC = "Metric query failed for no usable metrics template and query were configured"


def go_float(value: float) -> str:
    """Go's %v of a float64 (`99`, `99.5`, `1e+21`), used where Flagger prints thresholds."""
    return go_sprintf("%v", float(value))


def go_duration(milliseconds: int) -> str:
    """Go's time.Duration.String() for whole milliseconds (`0s`, `500ms`, `1.2s`, `1m0.5s`)."""
    if milliseconds == 0:
        return "0s"
    sign = "-" if milliseconds < 0 else ""
    ms = abs(milliseconds)
    if ms < 1000:
        return f"{sign}{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    text = f"{seconds}" + (f".{millis:03d}".rstrip("0") if millis else "") + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    if minutes:
        return f"{sign}{minutes}m{text}"
    return f"{sign}{text}"


@dataclass(frozen=True)
class AnalysisSettings:
    """Controller-wide settings the checks need (`--metrics-server`, `--mesh-provider`)."""

    metrics_server: str = "http://prometheus:9090"
    mesh_provider: str = ""
    timeout: float = 5.0
    per_backend_concurrency: int = 8
    max_response_bytes: int = MAX_METRIC_RESPONSE_BYTES


class MetricAnalyzer:
    """The `Analyzer` the scheduler uses: runs a canary's metric checks against its backends."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        sources: MetricSources,
        settings: AnalysisSettings | None = None,
        *,
        record: RecordMetric | None = None,
        kube_api: str | None = None,
        kube_token: str | None = None,
        kube_ssl: ssl.SSLContext | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.settings = settings or AnalysisSettings()
        self.sources = sources
        self.record = record
        self.context = ProviderContext(
            session=session,
            limiter=BackendLimiter(self.settings.per_backend_concurrency),
            timeout=self.settings.timeout,
            max_response_bytes=self.settings.max_response_bytes,
            kube_api=kube_api,
            kube_token=kube_token,
            kube_ssl=kube_ssl,
        )
        if clock is not None:
            self.context.clock = clock

    async def analyse(self, canary: Canary, *, route: str | None = None) -> AnalysisOutcome:
        return await run_metric_checks(self, canary, route=route)

    async def check_availability(self, canary: Canary) -> AvailabilityOutcome:
        return await check_provider_availability(self, canary)

    # --- helpers used by the two entry points ---

    def prometheus_for(self, canary: Canary) -> PrometheusProvider:
        address = canary.spec.metrics_server or self.settings.metrics_server
        spec = MetricTemplateProvider(type="prometheus", address=address)
        return PrometheusProvider.from_spec(spec, {}, self.context)

    def template_provider(
        self, canary: Canary, metric: CanaryMetric, interval: str
    ) -> tuple[MetricProvider, str, str, str]:
        """(provider, rendered-query source, template name, template namespace) or raise
        `_CheckFailed` with Flagger's error message."""
        assert metric.template_ref is not None
        name = metric.template_ref.name
        namespace = metric.template_ref.namespace or canary.namespace
        template = self.sources.metric_template(namespace, name)
        if template is None:
            raise _CheckFailed(
                f'Metric template {name}.{namespace} error: metrictemplate.flagger.app "{name}" not found'
            )
        provider_spec = template.spec.provider
        credentials: Mapping[str, bytes | str] | None = None
        if provider_spec.secret_ref is not None:
            secret_name = provider_spec.secret_ref.name
            credentials = self.sources.secret_data(namespace, secret_name)
            if credentials is None:
                raise _CheckFailed(
                    f"Metric template {name}.{namespace} secret {secret_name} error: "
                    f'secrets "{secret_name}" not found'
                )
        try:
            provider = provider_for(provider_spec, credentials, self.context, interval)
        except Exception as error:  # a provider bug or odd answer must not crash the cycle
            raise _CheckFailed(
                f"Metric template {name}.{namespace} provider {provider_spec.type} error: {_describe(error)}"
            ) from error
        return provider, template.spec.query, name, namespace


def _describe(error: BaseException) -> str:
    """Our own errors read as they are; anything else is a bug or a surprising answer, logged with
    its traceback and reported by type so the event still says what happened."""
    if isinstance(error, AnalysisError | TemplateError | BuiltinQueryError):
        return safe_text(str(error))
    log.warning("unexpected error in metric analysis: %s", safe_text(str(error)))
    return safe_text(f"unexpected {type(error).__name__}: {error}")


class _CheckFailed(Exception):
    def __init__(self, message: str, severity: str = "error") -> None:
        super().__init__(message)
        self.message = message
        self.severity = severity


def _interval(metric: CanaryMetric) -> str:
    return metric.interval or DEFAULT_METRIC_INTERVAL


def _is_builtin(metric: CanaryMetric) -> bool:
    """A builtin check is a builtin name with neither an inline query nor a template: a user's own
    `request-success-rate` template replaces the builtin instead of running beside it."""
    return metric.name in BUILTIN_METRICS and not metric.query and metric.template_ref is None


def _breach(
    metric: CanaryMetric,
    value: float,
    *,
    threshold_is_minimum: bool = False,
    bound: Callable[[float], float] = float,
) -> tuple[str, float] | None:
    """Which limit `value` breaks, as (`<` or `>`, limit), or None when it is within.

    With `thresholdRange` both ends count; the scalar `threshold` is a maximum (a minimum for the
    success rate). `bound` converts a limit before comparing (durations compare whole ms).
    """
    bounds = metric.threshold_range
    if bounds is not None:
        if bounds.min is not None and value < bound(bounds.min):
            return "<", bound(bounds.min)
        if bounds.max is not None and value > bound(bounds.max):
            return ">", bound(bounds.max)
        return None
    threshold = bound(metric.threshold or 0.0)
    if threshold_is_minimum:
        return ("<", threshold) if value < threshold else None
    return (">", threshold) if value > threshold else None


def _range_failure(canary: Canary, metric: CanaryMetric, value: float) -> str | None:
    """Flagger's generic threshold check (inline query and template metrics)."""
    breach = _breach(metric, value)
    if breach is None:
        return None
    op, limit = breach
    return f"Halt {canary.key} advancement {metric.name} {value:.2f} {op} {go_float(limit)}"


def _success_rate_failure(canary: Canary, metric: CanaryMetric, value: float) -> str | None:
    breach = _breach(metric, value, threshold_is_minimum=True)
    if breach is None:
        return None
    op, limit = breach
    return f"Halt {canary.key} advancement success rate {value:.2f}% {op} {go_float(limit)}%"


def _duration_failure(canary: Canary, metric: CanaryMetric, milliseconds: int) -> str | None:
    breach = _breach(metric, milliseconds, bound=int)
    if breach is None:
        return None
    op, limit = breach
    return (
        f"Halt {canary.key} advancement request duration {go_duration(milliseconds)} {op} "
        f"{go_duration(int(limit))}"
    )


async def _builtin_check(
    analyzer: MetricAnalyzer, canary: Canary, metric: CanaryMetric, route: str | None
) -> MetricResult:
    interval = _interval(metric)
    key = observer_key(canary, analyzer.settings.mesh_provider)
    try:
        observer = observer_for(key)
        prometheus = analyzer.prometheus_for(canary)
        query = builtin_query(
            observer, metric.name, TemplateModel.for_canary(canary, interval, route=route)
        )
    except (BuiltinQueryError, TemplateError) as error:
        return MetricResult(
            metric.name, None, False, f"Prometheus query failed: {_describe(error)}", "error"
        )
    except Exception as error:  # a provider bug or odd answer must not crash the cycle
        server = canary.spec.metrics_server or analyzer.settings.metrics_server
        message = f"Error building Prometheus client for {redact_url(server)} {_describe(error)}"
        return MetricResult(metric.name, None, False, message, "error")
    target = f"{canary.spec.target_ref.name}.{canary.namespace}"
    try:
        value = await aggregated_value(prometheus, query, metric, interval, _now(analyzer))
    except NoValuesFound as error:
        message = (
            f"Halt advancement no values found for {key} metric {metric.name} "
            f"probably {target} is not receiving traffic"
        )
        if metric.name == SUCCESS_RATE:
            message += f": running query failed: {_describe(error)}"
        return MetricResult(metric.name, None, False, message, "warning")
    except Exception as error:  # a provider bug or odd answer must not crash the cycle
        message = f"Prometheus query failed: running query failed: {_describe(error)}"
        return MetricResult(metric.name, None, False, message, "error")
    if metric.name == DURATION:
        milliseconds = int(value * 1000) if observer.duration_unit == "s" else int(value)
        _record(analyzer, canary, metric.name, milliseconds / 1000)
        failure = _duration_failure(canary, metric, milliseconds)
        return _judged(metric, float(milliseconds), failure)
    _record(analyzer, canary, metric.name, value)
    failure = _success_rate_failure(canary, metric, value)
    return _judged(metric, value, failure, minimum=True)


async def _inline_check(
    analyzer: MetricAnalyzer, canary: Canary, metric: CanaryMetric
) -> MetricResult:
    assert metric.query
    try:
        interval = _interval(metric)
        query = render_query(
            metric.query,
            RoleTemplateModel.for_role(canary, interval, metric.template_variables, "canary"),
            metric.name,
        )
        prometheus = analyzer.prometheus_for(canary)
        value = await aggregated_value(prometheus, query, metric, interval, _now(analyzer))
    except NoValuesFound:
        message = f"Halt advancement no values found for metric: {metric.name}"
        return MetricResult(metric.name, None, False, message, "warning")
    except Exception as error:  # a provider bug or odd answer must not crash the cycle
        message = f"Prometheus query failed for {metric.name}: {_describe(error)}"
        return MetricResult(metric.name, None, False, message, "error")
    _record(analyzer, canary, metric.name, value)
    failure = _range_failure(canary, metric, value)
    return _judged(metric, value, failure)


async def _template_check(
    analyzer: MetricAnalyzer, canary: Canary, metric: CanaryMetric, route: str | None
) -> MetricResult:
    interval = _interval(metric)
    try:
        provider, source, name, namespace = analyzer.template_provider(canary, metric, interval)
    except _CheckFailed as failed:
        return MetricResult(metric.name, None, False, failed.message, "error")
    try:
        query = render_query(
            source,
            RoleTemplateModel.for_role(
                canary, interval, metric.template_variables, "canary", route
            ),
            f"{name}.{namespace}",
        )
    except TemplateError as error:
        message = f"Metric template {name}.{namespace} query render error: {_describe(error)}"
        return MetricResult(metric.name, None, False, message, "error")
    try:
        value = await aggregated_value(provider, query, metric, interval, _now(analyzer))
    except NoValuesFound as error:
        message = (
            f"Halt advancement no values found for custom metric: {metric.name}: {_describe(error)}"
        )
        return MetricResult(metric.name, None, False, message, "warning")
    except Exception as error:  # a provider bug or odd answer must not crash the cycle
        message = f"Metric query failed for {metric.name}: {_describe(error)}"
        return MetricResult(metric.name, None, False, message, "error")
    _record(analyzer, canary, metric.name, value)
    failure = _range_failure(canary, metric, value)
    return _judged(metric, value, failure)


def _threshold_text(metric: CanaryMetric, *, minimum: bool = False) -> str:
    """What a Flagger-style check compared the value with, for the record."""
    bounds = metric.threshold_range
    if bounds is not None:
        parts = []
        if bounds.min is not None:
            parts.append(f">= {go_float(bounds.min)}")
        if bounds.max is not None:
            parts.append(f"<= {go_float(bounds.max)}")
        return " and ".join(parts) or "any"
    return f"{'>=' if minimum else '<='} {go_float(metric.threshold or 0.0)}"


def _judged(
    metric: CanaryMetric, value: float, failure: str | None, *, minimum: bool = False
) -> MetricResult:
    threshold = _threshold_text(metric, minimum=minimum)
    if failure is None:
        return MetricResult(metric.name, value, True, threshold=threshold)
    return MetricResult(metric.name, value, False, failure, "warning", threshold=threshold)


def _now(analyzer: MetricAnalyzer) -> float:
    return analyzer.context.clock()


async def _judge_check(
    analyzer: MetricAnalyzer, canary: Canary, metric: CanaryMetric, route: str | None
) -> MetricResult:
    """A metric with `judge:`: canary against control over the interval (docs/analysis.md)."""
    interval = _interval(metric)
    try:
        if metric.template_ref is not None:
            provider, source, name, namespace = analyzer.template_provider(canary, metric, interval)
            template = f"{name}.{namespace}"
        elif metric.query:
            provider, source, template = analyzer.prometheus_for(canary), metric.query, metric.name
        else:
            raise _CheckFailed(f"Metric {metric.name} judge needs a query or a templateRef")
        result, judgement = await judge_metric(
            provider, source, template, canary, metric, interval, _now(analyzer), route
        )
    except _CheckFailed as failed:
        return MetricResult(metric.name, None, False, failed.message, "error")
    except Exception as error:  # a provider bug or odd answer must not crash the cycle
        message = f"Metric query failed for {metric.name}: {_describe(error)}"
        return MetricResult(metric.name, None, False, message, "error")
    if judgement.canary_median is not None:
        _record(analyzer, canary, metric.name, judgement.canary_median)
    return result


def _record(analyzer: MetricAnalyzer, canary: Canary, metric: str, value: float) -> None:
    if analyzer.record is not None:
        analyzer.record(canary, metric, value)


def _metrics(canary: Canary) -> Sequence[CanaryMetric]:
    analysis = canary.spec.analysis
    return (analysis.metrics or []) if analysis else []


async def _first_pass(
    analyzer: MetricAnalyzer, canary: Canary, metric: CanaryMetric, route: str | None
) -> MetricResult | None:
    """Builtin and inline-query metrics (Flagger's `runBuiltinMetricChecks`)."""
    if metric.judge is not None:
        return await _judge_check(analyzer, canary, metric, route) if metric.query else None
    if _is_builtin(metric):
        return await _builtin_check(analyzer, canary, metric, route)
    if metric.query:
        return await _inline_check(analyzer, canary, metric)
    return None


async def _second_pass(
    analyzer: MetricAnalyzer, canary: Canary, metric: CanaryMetric, route: str | None
) -> MetricResult | None:
    """MetricTemplate metrics (Flagger's `runMetricChecks`)."""
    if metric.judge is not None and not metric.query:
        return await _judge_check(analyzer, canary, metric, route)
    if metric.template_ref is not None:
        return await _template_check(analyzer, canary, metric, route)
    if metric.name in BUILTIN_METRICS or metric.query:
        return None
    return MetricResult(metric.name, None, False, NO_USABLE_METRIC, "error")


async def run_metric_checks(
    analyzer: MetricAnalyzer, canary: Canary, *, route: str | None = None
) -> AnalysisOutcome:
    """Every metric check of one cycle, stopping at the first failure like Flagger.

    `route` is the Knative latest created revision for Knative targets (the caller reads it).
    Each result goes through the metric's opt-in semantics; judged metrics add a group score."""
    results: list[MetricResult] = []
    metrics = _metrics(canary)
    for check in (_first_pass, _second_pass):
        for metric in metrics:
            result = await check(analyzer, canary, metric, route)
            if result is None:
                continue
            result = apply_semantics(
                metric, result, consecutive_errors(canary, metric.name), canary.key
            )
            results.append(result)
            if not result.passed:
                return AnalysisOutcome(tuple(results))
    judged = scored(metrics, results)
    if not judged:
        return AnalysisOutcome(tuple(results))
    score, score_check = score_result(canary, judged)
    return AnalysisOutcome((*results, score_check), score=score)


async def check_provider_availability(
    analyzer: MetricAnalyzer, canary: Canary
) -> AvailabilityOutcome:
    """Flagger's init-time check: Prometheus answers `vector(1)` for builtin metrics, and every
    referenced template exists, has its Secret, builds a provider that is online."""
    prometheus_checked = False
    for metric in _metrics(canary):
        if metric.name in BUILTIN_METRICS:
            if prometheus_checked:
                continue
            prometheus_checked = True
            server = canary.spec.metrics_server or analyzer.settings.metrics_server
            try:
                prometheus = analyzer.prometheus_for(canary)
            except Exception as error:  # a provider bug or odd answer must not crash the cycle
                return AvailabilityOutcome(
                    False,
                    f"error building Prometheus client for {redact_url(server)} {_describe(error)}",
                )
            try:
                await prometheus.is_online()
            except Exception as error:  # a provider bug or odd answer must not crash the cycle
                return AvailabilityOutcome(False, f"prometheus not avaiable: {_describe(error)}")
            continue
        if metric.template_ref is None:
            continue
        try:
            provider, _, name, namespace = analyzer.template_provider(
                canary, metric, _interval(metric)
            )
        except _CheckFailed as failed:
            message = failed.message
            return AvailabilityOutcome(False, message[0].lower() + message[1:])
        try:
            online = await provider.is_online()
            error_text = "" if online else "not online"
        except Exception as error:  # a provider bug or odd answer must not crash the cycle
            online, error_text = False, str(error)
        if not online:
            template = analyzer.sources.metric_template(namespace, name)
            kind = template.spec.provider.type if template else "provider"
            return AvailabilityOutcome(
                False, f"{kind} in metric template {name}.{namespace} not avaiable: {error_text}"
            )
    return AvailabilityOutcome(True, "all the metrics providers are available!")
