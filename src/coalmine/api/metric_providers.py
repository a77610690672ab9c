"""Which MetricTemplate provider types answer range queries, and the one sentence that says a
provider does not: `coalmine check` (a judged or aggregated metric whose MetricTemplate is in the
same input) and the controller (at query time) say it alike. Pure: no I/O.

`tests/analysis/test_range_backends.py` keeps this table equal to the backends that implement
`run_range_query`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from coalmine.api.models import Canary
from coalmine.api.validation.problems import Problem

RANGE_QUERY_PROVIDERS: Final = frozenset(
    {
        "cloudwatch",
        "datadog",
        "dynatrace",
        "graphite",
        "influxdb",
        "newrelic",
        "prometheus",
        "splunk",
        "stackdriver",
    }
)


def range_query_refusal(provider_type: str) -> str:
    """Why a metric with `judge` or `aggregate` cannot run on `provider_type`."""
    return (
        f"the {provider_type} metric provider has no range queries, which judge and aggregate "
        f"need (providers with them: {', '.join(sorted(RANGE_QUERY_PROVIDERS))})"
    )


def range_problems(canary: Canary, templates: Mapping[tuple[str, str], str]) -> list[Problem]:
    """Metrics with `judge` or `aggregate` whose MetricTemplate (`templates`: (namespace, name)
    -> provider type, as far as known) has no range queries: the controller's query-time error,
    said before the run."""
    analysis = canary.spec.effective_analysis
    problems: list[Problem] = []
    for index, metric in enumerate((analysis.metrics if analysis else None) or []):
        ref = metric.template_ref
        if ref is None or not (metric.judge or metric.aggregate):
            continue
        namespace = ref.namespace or canary.namespace or ""
        # a template written without a namespace lands in whichever one it is applied to
        provider = templates.get((namespace, ref.name)) or templates.get(("", ref.name))
        if provider is not None and provider not in RANGE_QUERY_PROVIDERS:
            path = f"spec.analysis.metrics[{index}].templateRef"
            problems.append(Problem(path, range_query_refusal(provider)))
    return problems
