"""Validation rules of Canary, MetricTemplate and AlertProvider, each with its exact message."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from coalmine.api.models import AlertProvider, Canary, MetricTemplate, canonical_provider
from coalmine.api.validation import (
    ManifestError,
    Problem,
    inspect_object,
    parse_alert_provider,
    parse_canary,
    parse_metric_template,
    parse_object,
    summarize_problems,
)

Doc = dict[str, Any]


def canary_doc(**spec_overrides: Any) -> Doc:
    spec: Doc = {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "service": {"port": 9898},
        "analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10},
    }
    spec.update(spec_overrides)
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": spec,
    }


def with_analysis(**fields: Any) -> Doc:
    doc = canary_doc()
    doc["spec"]["analysis"].update(fields)
    return doc


def problems(doc: object, **options: Any) -> list[str]:
    return [str(problem) for problem in inspect_object(doc, **options).problems]


def errors(doc: object, **options: Any) -> list[str]:
    return [str(problem) for problem in inspect_object(doc, **options).errors]


# --- reading and translating ------------------------------------------------------------------


def test_a_valid_canary_parses_without_problems() -> None:
    canary = parse_canary(canary_doc())
    assert isinstance(canary, Canary)
    assert canary.spec.analysis is not None
    assert canary.spec.analysis.step_weight == 10
    assert problems(canary_doc()) == []


def test_unknown_fields_are_reported_with_their_path() -> None:
    doc = canary_doc()
    doc["spec"]["service"]["foo"] = 1
    assert errors(doc) == ["spec.service.foo: unknown field"]


def test_missing_required_field_is_reported_as_required() -> None:
    doc = canary_doc()
    del doc["spec"]["targetRef"]
    assert errors(doc) == ["spec.targetRef: required"]


def test_wrong_type_names_the_expected_type_and_the_value() -> None:
    doc = canary_doc()
    doc["spec"]["service"]["port"] = "abc"
    assert errors(doc) == ['spec.service.port: must be an integer, got "abc"']


def test_numbers_written_as_strings_are_refused_like_the_api_server_does() -> None:
    doc = canary_doc()
    doc["spec"]["service"]["port"] = "9898"
    assert errors(doc) == ['spec.service.port: must be an integer, got "9898"']


def test_target_port_accepts_a_number_or_a_name_and_nothing_else() -> None:
    for value in (9898, "http"):
        doc = canary_doc()
        doc["spec"]["service"]["targetPort"] = value
        assert errors(doc) == []
    doc = canary_doc()
    doc["spec"]["service"]["targetPort"] = [1]
    assert errors(doc) == ["spec.service.targetPort: must be an integer or a string, got [1]"]


def test_enum_values_are_listed_when_a_value_is_not_allowed() -> None:
    doc = canary_doc()
    doc["spec"]["targetRef"]["kind"] = "StatefulSet"
    assert errors(doc) == [
        'spec.targetRef.kind: must be one of "DaemonSet", "Deployment" or "Service", '
        'got "StatefulSet"'
    ]


def test_list_items_and_map_keys_appear_in_the_path() -> None:
    doc = with_analysis(
        match=[{"headers": {"x-canary": {"exact": 1}}}],
        metrics=[{"name": "request-success-rate", "thresholdRange": {"min": "high"}}],
    )
    assert errors(doc) == [
        'spec.analysis.metrics[0].thresholdRange.min: must be a number, got "high"',
        "spec.analysis.match[0].headers.x-canary.exact: must be a string, got 1",
    ]


def test_keys_with_dots_are_quoted_in_paths() -> None:
    doc = canary_doc()
    doc["spec"]["service"]["apex"] = {"labels": {"app.kubernetes.io/name": 1}}
    assert errors(doc) == [
        'spec.service.apex.labels["app.kubernetes.io/name"]: must be a string, got 1'
    ]


def test_duration_pattern_mismatch_says_what_a_duration_looks_like() -> None:
    assert errors(with_analysis(interval="soon")) == [
        'spec.analysis.interval: must be a duration such as 30s or 1m, got "soon"'
    ]


def test_shown_values_are_short_and_single_line_however_large_or_deep() -> None:
    deep: list[Any] = []
    cursor = deep
    for _ in range(50_000):
        cursor.append([])
        cursor = cursor[0]
    doc = canary_doc(targetRef=deep)
    doc["spec"]["service"]["port"] = "y" * 100_000 + "\u2028"
    messages = errors(doc)
    assert messages == [
        "spec.targetRef: must be an object, got [[[[…]]]]",
        'spec.service.port: must be an integer, got "' + "y" * 58 + "…",
    ]


def test_metadata_name_is_required() -> None:
    doc = canary_doc()
    del doc["metadata"]["name"]
    assert errors(doc) == ["metadata.name: required"]


def test_manifest_error_lists_every_problem_and_names_the_object() -> None:
    doc = canary_doc()
    doc["spec"]["service"]["port"] = "abc"
    doc["spec"]["service"]["foo"] = 1
    with pytest.raises(ManifestError) as caught:
        parse_canary(doc)
    assert caught.value.problems == [
        Problem("spec.service.port", 'must be an integer, got "abc"'),
        Problem("spec.service.foo", "unknown field"),
    ]
    assert str(caught.value) == (
        "Canary test/podinfo is invalid:\n"
        '  spec.service.port: must be an integer, got "abc"\n'
        "  spec.service.foo: unknown field"
    )


def test_other_kinds_are_not_ours() -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}}
    assert parse_object(service) is None
    assert parse_object(None) is None
    assert parse_object({"apiVersion": "argoproj.io/v1alpha1", "kind": "Canary"}) is None


def test_a_misspelled_kind_in_the_flagger_group_is_reported() -> None:
    doc = {"apiVersion": "flagger.app/v1beta1", "kind": "Canry", "metadata": {"name": "x"}}
    assert errors(doc) == [
        "kind: must be one of Canary, MetricTemplate, AlertProvider for flagger.app, "
        'got "Canry"; did you mean "Canary"?'
    ]
    doc["kind"] = "Rollout"
    assert errors(doc) == [
        'kind: must be one of Canary, MetricTemplate, AlertProvider for flagger.app, got "Rollout"'
    ]


def test_unserved_versions_are_refused() -> None:
    doc = {
        "apiVersion": "flagger.app/v1alpha1",
        "kind": "MetricTemplate",
        "metadata": {"name": "x"},
    }
    assert errors(doc) == [
        "apiVersion: flagger.app/v1alpha1 is not served for MetricTemplate; use flagger.app/v1beta1"
    ]


def test_a_document_that_is_not_an_object_is_an_error() -> None:
    assert errors([1, 2]) == ["document: must be an object, got [1, 2]"]
    with pytest.raises(ManifestError):
        parse_object("text")


def test_parse_by_kind_refuses_another_kind() -> None:
    with pytest.raises(ManifestError) as caught:
        parse_metric_template(canary_doc())
    assert [str(p) for p in caught.value.problems] == ['kind: must be MetricTemplate, got "Canary"']


# --- v1alpha3 ---------------------------------------------------------------------------------


def v1alpha3_doc() -> Doc:
    doc = canary_doc()
    doc["apiVersion"] = "flagger.app/v1alpha3"
    doc["spec"]["canaryAnalysis"] = doc["spec"].pop("analysis")
    return doc


def test_v1alpha3_canary_analysis_is_converted_to_v1beta1_analysis() -> None:
    canary = parse_canary(v1alpha3_doc())
    assert canary.api_version == "flagger.app/v1beta1"
    assert canary.spec.analysis is not None
    assert canary.spec.analysis.step_weight == 10
    assert canary.spec.canary_analysis is None
    assert problems(v1alpha3_doc()) == []


def test_v1alpha3_problems_name_canary_analysis() -> None:
    doc = v1alpha3_doc()
    doc["spec"]["canaryAnalysis"]["stepWeight"] = 0
    assert errors(doc) == ["spec.canaryAnalysis.stepWeight: must be between 1 and 100, got 0"]


def test_canary_analysis_in_v1beta1_is_read_with_a_deprecation_warning() -> None:
    doc = v1alpha3_doc()
    doc["apiVersion"] = "flagger.app/v1beta1"
    result = inspect_object(doc)
    assert isinstance(result.obj, Canary)
    assert result.obj.spec.analysis is not None
    assert [str(p) for p in result.problems] == [
        "spec.canaryAnalysis: warning: deprecated name of spec.analysis (flagger.app/v1alpha3); "
        "read as spec.analysis"
    ]


def test_canary_analysis_beside_analysis_is_ignored_with_a_warning() -> None:
    doc = canary_doc(canaryAnalysis={"interval": "5m"})
    result = inspect_object(doc)
    assert isinstance(result.obj, Canary)
    assert result.obj.spec.analysis is not None
    assert result.obj.spec.analysis.interval == "1m"
    assert [str(p) for p in result.problems] == [
        "spec.canaryAnalysis: warning: ignored because spec.analysis is set "
        "(canaryAnalysis is the v1alpha3 name)"
    ]


@pytest.mark.parametrize("api_version", ["core/v1", "v1"])
def test_service_targets_accept_core_v1_and_v1(api_version: str) -> None:
    doc = canary_doc(targetRef={"apiVersion": api_version, "kind": "Service", "name": "podinfo"})
    canary = parse_canary(doc)
    assert canary.spec.target_ref.is_core_service


# --- Flagger's verifyCanary table (TestController_verifyCanary) -----------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {
                "provider": "gloo",
                "upstreamRef": {
                    "apiVersion": "gloo.solo.io/v1",
                    "kind": "Upstream",
                    "name": "upstream",
                    "namespace": "other",
                },
            },
            "spec.upstreamRef.namespace: can't access gloo upstream upstream.other, "
            "cross-namespace references are blocked",
        ),
        (
            {
                "analysis": {
                    "interval": "1m",
                    "threshold": 5,
                    "stepWeight": 10,
                    "metrics": [
                        {
                            "name": "custom",
                            "templateRef": {"name": "envoy", "namespace": "other"},
                            "thresholdRange": {"max": 100},
                        }
                    ],
                }
            },
            "spec.analysis.metrics[0].templateRef.namespace: can't access metric template "
            "envoy.other, cross-namespace references are blocked",
        ),
        (
            {
                "analysis": {
                    "interval": "1m",
                    "threshold": 5,
                    "stepWeight": 10,
                    "alerts": [
                        {"name": "slack", "providerRef": {"name": "slack", "namespace": "other"}}
                    ],
                }
            },
            "spec.analysis.alerts[0].providerRef.namespace: can't access alert provider "
            "slack.other, cross-namespace references are blocked",
        ),
    ],
)
def test_cross_namespace_references_are_blocked_when_asked(spec: Doc, message: str) -> None:
    doc = canary_doc(**spec)
    assert errors(doc, no_cross_namespace_refs=True) == [message]
    assert errors(doc) == []


def test_same_namespace_or_empty_namespace_references_are_allowed() -> None:
    doc = canary_doc(
        analysis={
            "interval": "1m",
            "threshold": 5,
            "stepWeight": 10,
            "metrics": [
                {
                    "name": "a",
                    "templateRef": {"name": "t", "namespace": "test"},
                    "thresholdRange": {"max": 1},
                },
                {"name": "b", "templateRef": {"name": "t"}, "thresholdRange": {"max": 1}},
            ],
            "alerts": [{"name": "slack", "providerRef": {"name": "slack"}}],
        }
    )
    assert errors(doc, no_cross_namespace_refs=True) == []


KNATIVE_TARGET = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "podinfo"}


def test_knative_provider_needs_a_knative_target() -> None:
    assert errors(canary_doc(provider="knative")) == [
        "spec.targetRef: can't use apps/v1/Deployment as target if provider is set to knative"
    ]


def test_knative_target_needs_the_knative_provider() -> None:
    assert errors(canary_doc(provider="istio", targetRef=KNATIVE_TARGET)) == [
        "spec.provider: can't use istio provider with Knative Service as target"
    ]


def test_knative_target_ignores_the_global_mesh_provider() -> None:
    doc = canary_doc(targetRef=KNATIVE_TARGET)
    assert errors(doc, mesh_provider="knative") == [
        "spec.provider: required: a Knative Service target needs provider knative "
        "(the global mesh provider does not count)"
    ]


def test_knative_target_cannot_have_an_autoscaler() -> None:
    doc = canary_doc(
        provider="knative",
        targetRef=KNATIVE_TARGET,
        autoscalerRef={
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "name": "x",
        },
    )
    assert errors(doc) == ["spec.autoscalerRef: can't use autoscaler with Knative Service"]


def test_knative_provider_with_knative_target_is_valid_without_service() -> None:
    doc = canary_doc(provider="knative", targetRef=KNATIVE_TARGET)
    del doc["spec"]["service"]
    assert problems(doc) == []


def test_equal_session_affinity_cookie_names_are_refused_with_flaggers_message() -> None:
    doc = with_analysis(sessionAffinity={"cookieName": "flagger", "primaryCookieName": "flagger"})
    assert errors(doc) == [
        "spec.analysis.sessionAffinity.primaryCookieName: can't use the same cookie name for both "
        "primary and cookie name; please update them to be different"
    ]


# --- analysis: Flagger's CRD oneOf --------------------------------------------------------------


def test_analysis_needs_interval_and_threshold() -> None:
    doc = canary_doc(analysis={"stepWeight": 10})
    assert errors(doc) == ["spec.analysis.interval: required", "spec.analysis.threshold: required"]


def test_analysis_needs_one_strategy_field() -> None:
    doc = canary_doc(analysis={"interval": "1m", "threshold": 5})
    assert errors(doc) == [
        "spec.analysis: one of iterations, stepWeight or stepWeights is required"
    ]


def test_analysis_strategy_fields_are_mutually_exclusive() -> None:
    doc = with_analysis(iterations=10)
    assert errors(doc) == [
        "spec.analysis: iterations, stepWeight and stepWeights are mutually exclusive, "
        "found iterations and stepWeight"
    ]


def test_absent_analysis_is_a_warning_because_the_run_is_promoted_without_checks() -> None:
    doc = canary_doc()
    del doc["spec"]["analysis"]
    result = inspect_object(doc)
    assert isinstance(result.obj, Canary)
    assert result.obj.spec.skips_analysis
    assert [str(p) for p in result.problems] == [
        "spec.analysis: warning: absent: every new revision is promoted without analysis "
        "(Flagger's CRD requires spec.analysis)"
    ]


# --- analysis: weights --------------------------------------------------------------------------


def test_step_weights_must_increase() -> None:
    doc = with_analysis(stepWeight=None, maxWeight=None, stepWeights=[1, 20, 10, 30])
    assert errors(doc) == [
        "spec.analysis.stepWeights[2]: must be greater than the previous step (10 <= 20)"
    ]


def test_a_last_step_weight_above_100_is_accepted_and_capped() -> None:
    doc = with_analysis(stepWeight=None, maxWeight=None, stepWeights=[1, 2, 10, 200])
    result = inspect_object(doc)
    assert isinstance(result.obj, Canary)
    assert result.obj.spec.analysis is not None
    assert result.obj.spec.analysis.effective_max_weight == 100
    assert [str(p) for p in result.problems] == [
        "spec.analysis.stepWeights[3]: warning: the last step is capped at 100, got 200"
    ]


def test_step_weights_before_the_last_must_be_between_1_and_100() -> None:
    doc = with_analysis(stepWeight=None, maxWeight=None, stepWeights=[0, 150, 200])
    assert errors(doc) == [
        "spec.analysis.stepWeights[0]: must be between 1 and 100, got 0",
        "spec.analysis.stepWeights[1]: must be between 1 and 100, got 150",
    ]


def test_empty_step_weights_never_advance_and_are_refused() -> None:
    doc = with_analysis(stepWeight=None, maxWeight=None, stepWeights=[])
    assert errors(doc) == ["spec.analysis.stepWeights: must not be empty"]


def test_max_weight_is_ignored_beside_step_weights() -> None:
    doc = with_analysis(stepWeight=None, stepWeights=[10, 20])
    assert problems(doc) == [
        "spec.analysis.maxWeight: warning: ignored because stepWeights is set "
        "(the last step is the maximum)"
    ]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"maxWeight": 150}, "spec.analysis.maxWeight: must be between 1 and 100, got 150"),
        ({"stepWeight": 0}, "spec.analysis.stepWeight: must be between 1 and 100, got 0"),
        (
            {"stepWeight": None, "iterations": 0},
            "spec.analysis.iterations: must be at least 1, got 0",
        ),
        (
            {"stepWeightPromotion": 120},
            "spec.analysis.stepWeightPromotion: must be between 0 and 100, got 120",
        ),
        (
            {"primaryReadyThreshold": 101},
            "spec.analysis.primaryReadyThreshold: must be a percentage between 0 and 100, got 101",
        ),
        (
            {"mirrorWeight": 101},
            "spec.analysis.mirrorWeight: must be at most 100, got 101",
        ),
    ],
)
def test_weight_ranges(fields: Doc, message: str) -> None:
    doc = with_analysis(**fields)
    doc["spec"]["analysis"] = {k: v for k, v in doc["spec"]["analysis"].items() if v is not None}
    assert errors(doc) == [message]


def test_a_step_weight_above_100_is_capped_with_a_warning() -> None:
    assert problems(with_analysis(stepWeight=150, maxWeight=None)) == [
        "spec.analysis.stepWeight: warning: values above 100 are capped at 100, got 150"
    ]


def test_max_weight_zero_means_100_with_a_warning() -> None:
    assert problems(with_analysis(maxWeight=0)) == [
        "spec.analysis.maxWeight: warning: 0 means the default, 100"
    ]


# --- analysis: metrics, webhooks, alerts -------------------------------------------------------


def test_threshold_range_min_must_not_exceed_max() -> None:
    doc = with_analysis(
        metrics=[{"name": "request-duration", "thresholdRange": {"min": 5, "max": 1}}]
    )
    assert errors(doc) == [
        "spec.analysis.metrics[0].thresholdRange: min must not be greater than max (5 > 1)"
    ]


def test_a_metric_needs_a_template_a_query_or_a_builtin_name() -> None:
    doc = with_analysis(metrics=[{"name": "latency", "thresholdRange": {"max": 1}}])
    assert errors(doc) == [
        'spec.analysis.metrics[0]: metric "latency" needs a templateRef or a query '
        "(or a builtin name: request-success-rate or request-duration)"
    ]


@pytest.mark.parametrize(
    "metric",
    [
        {"name": "request-success-rate", "thresholdRange": {"min": 99}},
        {"name": "request-duration", "threshold": 500},
        {"name": "custom", "query": "vector(1)", "thresholdRange": {"max": 1}},
        {"name": "custom", "templateRef": {"name": "t"}, "thresholdRange": {"max": 1}},
    ],
)
def test_builtin_inline_and_template_metrics_are_valid(metric: Doc) -> None:
    assert problems(with_analysis(metrics=[metric])) == []


def test_a_custom_metric_without_threshold_warns_that_any_positive_value_fails() -> None:
    doc = with_analysis(metrics=[{"name": "custom", "templateRef": {"name": "t"}}])
    assert problems(doc) == [
        'spec.analysis.metrics[0]: warning: metric "custom" has no thresholdRange: '
        "the check fails whenever the value is above 0"
    ]


def test_a_metric_interval_that_is_not_a_go_duration_is_a_warning() -> None:
    doc = with_analysis(metrics=[{"name": "request-duration", "interval": "1min", "threshold": 5}])
    assert problems(doc) == [
        'spec.analysis.metrics[0].interval: warning: "1min" is not a Go duration '
        "(the query window is probably invalid)"
    ]


@pytest.mark.parametrize("url", ["flagger-loadtester.test/", "ftp://host/", "http://", "/gate"])
def test_webhook_urls_must_be_absolute_http_urls(url: str) -> None:
    doc = with_analysis(webhooks=[{"name": "hook", "url": url}])
    assert errors(doc) == [
        f'spec.analysis.webhooks[0].url: must be an absolute http or https URL, got "{url}"'
    ]


def test_duplicate_metric_and_webhook_names_are_warnings() -> None:
    doc = with_analysis(
        metrics=[
            {"name": "request-duration", "threshold": 5},
            {"name": "request-duration", "threshold": 6},
        ],
        webhooks=[
            {"name": "load", "url": "http://a/"},
            {"name": "load", "url": "http://b/"},
        ],
    )
    assert problems(doc) == [
        'spec.analysis.metrics[1].name: warning: duplicate name "request-duration" '
        "(also used by metrics[0])",
        'spec.analysis.webhooks[1].name: warning: duplicate name "load" (also used by webhooks[0])',
    ]


def test_ab_header_matches_need_exactly_one_match_kind() -> None:
    doc = with_analysis(
        stepWeight=None,
        maxWeight=None,
        iterations=10,
        match=[{"headers": {"x-canary": {}, "cookie": {"exact": "a", "regex": "b"}}}],
    )
    assert errors(doc) == [
        "spec.analysis.match[0].headers.x-canary: one of exact, prefix, suffix, regex is required",
        "spec.analysis.match[0].headers.cookie: only one of exact, prefix, suffix, regex may be set",
    ]


# --- analysis: strategies and providers ---------------------------------------------------------


def test_ab_match_without_iterations_is_ignored_with_a_warning() -> None:
    doc = with_analysis(match=[{"headers": {"x-canary": {"exact": "insider"}}}])
    assert problems(doc) == [
        "spec.analysis.match: warning: ignored without iterations "
        "(A/B testing runs a number of iterations)"
    ]


def test_kubernetes_provider_turns_progressive_traffic_into_blue_green() -> None:
    assert problems(canary_doc(provider="kubernetes")) == [
        "spec.analysis.stepWeight: warning: Progressive traffic is not supported when using the "
        "kubernetes provider; iterations 10 is used (Blue/Green)"
    ]


def test_kubernetes_provider_does_not_support_ab_testing() -> None:
    doc = canary_doc(
        provider="kubernetes",
        analysis={
            "interval": "1m",
            "threshold": 5,
            "iterations": 5,
            "match": [{"headers": {"x-canary": {"exact": "insider"}}}],
        },
    )
    assert problems(doc) == [
        "spec.analysis.match: warning: A/B testing is not supported when using the kubernetes provider"
    ]


def test_provider_capabilities_are_left_to_the_one_verdict() -> None:
    """Mirroring, session affinity and A/B on a router without them are judged by
    `routers.verdict.compatibility` (tests/routers/test_verdict.py), not reported twice here."""
    doc = canary_doc(
        provider="linkerd",
        analysis={"interval": "1m", "threshold": 5, "iterations": 5, "mirror": True},
    )
    doc["spec"]["analysis"]["sessionAffinity"] = {"cookieName": "flagger-cookie"}
    assert [p for p in problems(doc) if "mirror" in p or "sessionAffinity:" in p] == [
        "spec.analysis.sessionAffinity: warning: only used by the canary strategy "
        "(stepWeight/stepWeights), not by blue-green"
    ]


def test_provider_rules_use_the_mesh_provider_when_spec_provider_is_empty() -> None:
    doc = with_analysis(sessionAffinity={"cookieName": "c"})
    assert problems(doc) == []
    assert problems(doc, mesh_provider="nginx") == [
        "spec.ingressRef: required by the nginx provider"
    ]


@pytest.mark.parametrize(
    ("provider", "message"),
    [
        (
            "gatewayapi:v1",
            "spec.service.gatewayRefs: GatewayRefs must be specified when using Gateway API as a provider.",
        ),
        (
            "gatewayapi:v1beta1",
            "spec.service.gatewayRefs: GatewayRefs must be specified when using Gateway API as a provider.",
        ),
        ("nginx", "spec.ingressRef: required by the nginx provider"),
        ("skipper", "spec.ingressRef: required by the skipper provider"),
        ("apisix", "spec.routeRef: required by the apisix provider"),
    ],
)
def test_providers_that_route_through_a_referenced_object_require_it(
    provider: str, message: str
) -> None:
    assert errors(canary_doc(provider=provider)) == [message]


def test_gateway_api_mirror_filters_to_a_service_need_a_port() -> None:
    doc = canary_doc()
    doc["spec"]["service"]["mirror"] = [
        {"backendRef": {"name": "podinfo-shadow"}},
        {"backendRef": {"name": "podinfo-shadow", "port": 9898}},
    ]
    assert errors(doc) == [
        "spec.service.mirror[0].backendRef.port: Must have port for Service reference"
    ]


def test_service_match_conditions_take_at_most_one_istio_match_kind() -> None:
    doc = canary_doc()
    doc["spec"]["service"]["match"] = [
        {"uri": {"prefix": "/", "regex": "/.*"}, "headers": {"x-user": {"suffix": "a"}}},
        {"uri": {"prefix": "/api"}},
    ]
    doc["spec"]["service"]["corsPolicy"] = {"allowOrigins": [{}]}
    assert errors(doc) == [
        "spec.service.match[0].uri: only one of exact, prefix, regex may be set",
        "spec.service.match[0].headers.x-user.suffix: not supported here (use exact, prefix, regex)",
        "spec.service.corsPolicy.allowOrigins[0]: one of exact, prefix, regex is required",
    ]


def test_istio_delegation_cannot_have_hosts_or_gateways() -> None:
    doc = canary_doc(provider="istio")
    doc["spec"]["service"].update(delegation=True, hosts=["app.example.com"])
    assert errors(doc) == [
        "spec.service.delegation: a delegate VirtualService cannot have hosts and gateways"
    ]


def test_provider_must_be_one_of_the_crd_values() -> None:
    doc = canary_doc(provider="smi:v1alpha1:istio")
    (message,) = errors(doc)
    assert message.startswith('spec.provider: must be one of "apisix", "appmesh"')
    assert message.endswith('got "smi:v1alpha1:istio"')


@pytest.mark.parametrize(
    ("value", "provider"),
    [
        ("istio", "istio"),
        ("smi:v1alpha1:istio", "smi:v1alpha1"),
        ("gatewayapi:v1", "gatewayapi:v1"),
        ("gatewayapi:v1beta1", "gatewayapi:v1beta1"),
        ("appmesh:v1beta2", "appmesh:v1beta2"),
        ("gloo:v1", "gloo"),
        ("gatewayapi", None),
        ("consul", None),
        ("", None),
    ],
)
def test_mesh_provider_flag_values_are_read_like_flaggers_router_factory(
    value: str, provider: str | None
) -> None:
    assert canonical_provider(value) == provider


# --- targets --------------------------------------------------------------------------------------


def test_service_targets_with_an_autoscaler_get_a_warning_not_an_error() -> None:
    doc = canary_doc(
        targetRef={"apiVersion": "v1", "kind": "Service", "name": "podinfo"},
        autoscalerRef={
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "name": "x",
        },
    )
    assert problems(doc) == [
        "spec.autoscalerRef: warning: has no effect on a Service target (there are no pods to scale)"
    ]


def test_deployments_need_a_service_section() -> None:
    doc = canary_doc()
    del doc["spec"]["service"]
    assert errors(doc) == ["spec.service: required for Deployment targets"]


# --- MetricTemplate -------------------------------------------------------------------------------


def template_doc(provider: Doc, query: str = "vector(1)") -> Doc:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "MetricTemplate",
        "metadata": {"name": "t", "namespace": "test"},
        "spec": {"provider": provider, "query": query},
    }


def test_cloudwatch_templates_need_a_region() -> None:
    assert errors(template_doc({"type": "cloudwatch"})) == [
        "spec.provider.region: required by the cloudwatch provider"
    ]
    assert isinstance(
        parse_metric_template(template_doc({"type": "cloudwatch", "region": "eu-west-1"})),
        MetricTemplate,
    )


def test_the_http_provider_of_coalmine_is_accepted_and_needs_an_address() -> None:
    assert errors(template_doc({"type": "http"})) == [
        "spec.provider.address: required by the http provider"
    ]
    assert errors(template_doc({"type": "http", "address": "http://metrics.test/"})) == []


def test_template_query_must_not_be_empty() -> None:
    assert errors(template_doc({"type": "keptn"}, query="  ")) == ["spec.query: must not be empty"]


def test_template_provider_type_is_checked() -> None:
    (message,) = errors(template_doc({"type": "honeycomb"}))
    assert message.startswith('spec.provider.type: must be one of "prometheus"')


# --- AlertProvider --------------------------------------------------------------------------------


def alert_doc(**spec: Any) -> Doc:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "AlertProvider",
        "metadata": {"name": "on-call", "namespace": "flagger"},
        "spec": {"type": "slack", **spec},
    }


def test_alert_provider_with_address_or_secret_ref_is_valid() -> None:
    assert isinstance(
        parse_alert_provider(alert_doc(address="https://hooks.slack.com/x")), AlertProvider
    )
    assert isinstance(parse_alert_provider(alert_doc(secretRef={"name": "url"})), AlertProvider)


def test_alert_provider_with_both_address_and_secret_ref_is_refused_as_by_flaggers_schema() -> None:
    doc = alert_doc(address="https://hooks.slack.com/x", secretRef={"name": "url"})
    assert errors(doc) == [
        "spec: address and secretRef are mutually exclusive (Flagger's schema refuses both); "
        "keep secretRef and put the address in the Secret's `address` key"
    ]


def test_alert_provider_needs_an_address_or_a_secret_ref() -> None:
    assert errors(alert_doc()) == ["spec: one of address or secretRef is required"]


def test_parsing_does_not_change_the_input_document() -> None:
    doc = v1alpha3_doc()
    before = copy.deepcopy(doc)
    parse_canary(doc)
    assert doc == before


def test_problems_summarize_to_one_line_with_errors_first_and_a_count_past_the_limit() -> None:
    found = [
        Problem("spec.a", "warned", "warning"),
        Problem("spec.b", "broken"),
        Problem("spec.c", "also broken"),
    ]
    assert summarize_problems(found) == (
        "spec.b: broken; spec.c: also broken; spec.a: warning: warned"
    )
    assert summarize_problems(found, limit=30) == "spec.b: broken (and 2 more)"
    assert summarize_problems([]) == ""
