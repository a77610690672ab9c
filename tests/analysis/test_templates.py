"""Query templates render like Flagger's Go templates: doc examples, builtin idioms and errors."""

from __future__ import annotations

import pytest

from coalmine.analysis.templates import TemplateError, TemplateModel, go_sprintf, render_query

MODEL = TemplateModel(
    name="podinfo-canary",
    namespace="test",
    target="podinfo",
    service="podinfo-svc",
    ingress="podinfo-ingress",
    route="podinfo-route",
    interval="1m",
    variables={"direction": "inbound", "reporter": "destination"},
)


def substitute(text: str) -> str:
    """The oracle for doc examples: each documented placeholder replaced by its value."""
    for key, value in {
        "{{ name }}": MODEL.name,
        "{{ namespace }}": MODEL.namespace,
        "{{ target }}": MODEL.target,
        "{{target}}": MODEL.target,
        "{{ service }}": MODEL.service,
        "{{ ingress }}": MODEL.ingress,
        "{{ interval }}": MODEL.interval,
        "{{interval}}": MODEL.interval,
        "{{ variables.direction }}": "inbound",
    }.items():
        text = text.replace(key, value)
    return text


# MetricTemplate queries from Flagger's "Metrics Analysis" documentation.
DOC_EXAMPLES = {
    "linkerd-variables": """histogram_quantile(
  0.99,
  sum(
    rate(
      response_latency_ms_bucket{
        namespace="{{ namespace }}",
        deployment=~"{{ target }}",
        direction="{{ variables.direction }}"
      }[{{ interval }}]
    )
  ) by (le)
)
""",
    "istio-not-found": """100 - sum(
    rate(
        istio_requests_total{
          reporter="destination",
          destination_workload_namespace="{{ namespace }}",
          destination_workload="{{ target }}",
          response_code!="404"
        }[{{ interval }}]
    )
)
/
sum(
    rate(
        istio_requests_total{
          reporter="destination",
          destination_workload_namespace="{{ namespace }}",
          destination_workload="{{ target }}"
        }[{{ interval }}]
    )
) * 100
""",
    "datadog": """100 - (
  sum:istio.mesh.request.count{
    reporter:destination,
    destination_workload_namespace:{{ namespace }},
    destination_workload:{{ target }},
    !response_code:404
  }.as_count()
  /
  sum:istio.mesh.request.count{
    reporter:destination,
    destination_workload_namespace:{{ namespace }},
    destination_workload:{{ target }}
  }.as_count()
) * 100
""",
    "cloudwatch": """[
    {"Id": "e1", "Expression": "m1 / m2", "Label": "ErrorRate"},
    {"Id": "m1", "MetricStat": {"Metric": {"Namespace": "MyKubernetesCluster",
        "MetricName": "ErrorCount",
        "Dimensions": [{"Name": "appName", "Value": "{{ name }}.{{ namespace }}"}]},
        "Period": 60, "Stat": "Sum", "Unit": "Count"}, "ReturnData": false}
]
""",
    "newrelic": """SELECT
    filter(sum(nginx_ingress_controller_requests), WHERE status >= '500') /
    sum(nginx_ingress_controller_requests) * 100
FROM Metric
WHERE metricName = 'nginx_ingress_controller_requests'
AND ingress = '{{ ingress }}' AND  namespace = '{{ namespace }}'
""",
    "graphite": """target=summarize(
  asPercent(
    sumSeries(
      stats.timers.httpServerRequests.app.{{target}}.exception.*.method.*.outcome.{CLIENT_ERROR,INFORMATIONAL,REDIRECTION,SUCCESS}.status.*.uri.*.count
    ),
    sumSeries(
      stats.timers.httpServerRequests.app.{{target}}.exception.*.method.*.outcome.*.status.*.uri.*.count
    )
  ),
  {{interval}},
  'avg'
)
""",
    "stackdriver": """fetch k8s_container
| metric 'istio.io/service/server/response_latencies'
| filter
    (metric.destination_service_name == '{{ service }}-canary'
    && metric.destination_service_namespace == '{{ namespace }}')
| align delta(1m)
| every 1m
| group_by [],
    [value_response_latencies_percentile:
      percentile(value.response_latencies, 99)]
""",
}


@pytest.mark.parametrize("example", sorted(DOC_EXAMPLES))
def test_flagger_doc_templates_render_to_the_same_query(example: str) -> None:
    source = DOC_EXAMPLES[example]
    rendered = render_query(source, MODEL, example)
    assert rendered == substitute(source)
    assert "{{" not in rendered


def test_whitespace_trim_markers_remove_surrounding_space() -> None:
    assert render_query("a  \n {{- target -}} \n  b", MODEL) == "apodinfob"
    assert render_query("a {{ target }} b", MODEL) == "a podinfo b"


def test_skipper_style_variable_assignment_and_printf() -> None:
    source = (
        '{{- $route := printf "kube(ew)?_%s__%s_canary__.*__%s_canary(_[0-9]+)?" '
        'namespace ingress service }}\nroute=~"{{ $route }}"'
    )
    # `{{-` trims only before the action, so the newline after it stays (as in Go).
    assert render_query(source, MODEL) == (
        '\nroute=~"kube(ew)?_test__podinfo-ingress_canary__.*__podinfo-svc_canary(_[0-9]+)?"'
    )


def test_pipelines_parentheses_and_comments() -> None:
    assert render_query('{{ target | printf "%s-canary" }}', MODEL) == "podinfo-canary"
    assert render_query('{{ printf "%s/%s" (namespace) (target) }}', MODEL) == "test/podinfo"
    assert render_query("x{{/* a comment */}}y", MODEL) == "xy"
    assert render_query('{{ index variables "reporter" }}', MODEL) == "destination"
    assert render_query("{{ `raw` }} {{ 42 }} {{ name }}", MODEL) == "raw 42 podinfo-canary"


def test_go_printf_verbs() -> None:
    assert go_sprintf("%s %d %v %q %.2f %%", "a", 3, 1.5, "q", 2.0) == 'a 3 1.5 "q" 2.00 %'
    assert go_sprintf("%v", 99.0) == "99"
    # Go switches to exponent form from 1e+06 (shortest %g), unlike Python's repr.
    assert [go_sprintf("%v", v) for v in (500000.0, 1e6, 123456789.0, 0.0001, 1.5e-5)] == [
        "500000", "1e+06", "1.23456789e+08", "0.0001", "1.5e-05",
    ]  # fmt: skip
    assert go_sprintf("%s") == "%!s(MISSING)"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "{{ variables.missing }}",
            'template: latency.istio-system:1:3: executing "latency.istio-system" at '
            '<variables.missing>: map has no entry for key "missing"',
        ),
        ("{{ nope }}", 'template: latency.istio-system:1:3: function "nope" not defined'),
        (
            "{{ .Values.x }}",
            'template: latency.istio-system:1:3: executing "latency.istio-system" at '
            '<.Values.x>: nil data; no entry for key "Values"',
        ),
        ("sum({{ target", "template: latency.istio-system:1:4: unclosed action"),
        ("{{ $undefined }}", 'template: latency.istio-system:1:3: undefined variable "$undefined"'),
        ("{{ (target }}", "template: latency.istio-system:1:4: unclosed left paren"),
        ("{{ }}", "template: latency.istio-system:1:3: missing value for command"),
        (
            '{{ "a" "b" }}',
            'template: latency.istio-system:1:3: executing "latency.istio-system" at '
            '<"a">: can\'t give argument to non-function "a"',
        ),
    ],
)
def test_template_errors_name_the_template_line_and_column_as_go(
    source: str, expected: str
) -> None:
    with pytest.raises(TemplateError) as raised:
        render_query(source, MODEL, "latency.istio-system")
    assert str(raised.value) == expected


def test_error_line_number_points_at_the_action() -> None:
    with pytest.raises(TemplateError, match=r"template: t:3:3: executing .* map has no entry"):
        render_query("a\nb\n{{ variables.zzz }}", MODEL, "t")
