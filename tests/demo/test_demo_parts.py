"""The demo's pure parts: traffic split, stats, version resolution, templates."""

from __future__ import annotations

from collections import Counter
from typing import Any

import aiohttp

from coalmine.analysis.templates import TemplateModel, render_query
from coalmine.demo.gateway import accepted_status
from coalmine.demo.runner import route_weights
from coalmine.demo.scenarios import backend_texts, metric_templates, metric_window, version_in
from coalmine.demo.traffic import (
    SmoothWeightedPicker,
    TrafficServer,
    VersionBehaviour,
    _Request,
    summarize,
)


def test_the_picker_splits_requests_exactly_by_weight() -> None:
    picker = SmoothWeightedPicker()
    picks = Counter(picker.pick({"podinfo-primary": 90, "podinfo-canary": 10}) for _ in range(100))
    assert picks == {"podinfo-primary": 90, "podinfo-canary": 10}


def test_the_picker_sends_nothing_to_a_zero_weight_backend() -> None:
    picker = SmoothWeightedPicker()
    assert {picker.pick({"a": 100, "b": 0}) for _ in range(20)} == {"a"}
    assert picker.pick({"a": 0}) is None


def test_stats_without_requests_are_missing_not_zero() -> None:
    stats = summarize([])
    assert stats.as_json() == {"requests": 0, "successRate": None, "latencyP99Ms": None}


def test_stats_give_the_success_rate_and_the_p99() -> None:
    requests = [_Request(0.0, "b", ok=i % 4 != 0, seconds=(i + 1) / 1000) for i in range(100)]
    stats = summarize(requests)
    assert stats.success_rate == 75.0
    assert stats.latency_p99_ms == 99.0


def test_a_backend_version_is_read_from_selector_externalname_or_selected_pods() -> None:
    versions = ["blue", "green"]
    selector = {"spec": {"selector": {"app": "podinfo-green"}}}
    external = {"spec": {"type": "ExternalName", "externalName": "podinfo.blue-cluster.example"}}
    primary = {"spec": {"selector": {"app": "podinfo-primary"}}}
    deployment = {
        "spec": {
            "template": {"metadata": {"labels": {"app": "podinfo-primary", "version": "blue"}}}
        }
    }
    other = {"spec": {"template": {"metadata": {"labels": {"app": "podinfo", "version": "green"}}}}}
    assert version_in(backend_texts(selector, []), versions) == "green"
    assert version_in(backend_texts(external, []), versions) == "blue"
    assert version_in(backend_texts(primary, [other, deployment]), versions) == "blue"
    assert version_in(["greenhouse"], versions) is None


def test_route_weights_read_the_first_weighted_rule() -> None:
    route = {
        "spec": {
            "rules": [
                {
                    "backendRefs": [
                        {"name": "podinfo-primary", "weight": 70},
                        {"name": "podinfo-canary", "weight": 30},
                    ]
                }
            ]
        }
    }
    assert route_weights(route) == {"primary": 70, "canary": 30}


def test_the_metric_window_holds_several_scrapes_whatever_the_interval() -> None:
    assert metric_window("1s") == "5s"
    assert metric_window("10s") == "20s"


def test_the_templates_render_to_the_canary_backend() -> None:
    for metrics in ("prometheus", "http"):
        for template in metric_templates(metrics, "http://127.0.0.1:9"):
            model = TemplateModel(
                "podinfo", "default", "podinfo", "podinfo", "podinfo", "podinfo", "5s"
            )
            query = render_query(template["spec"]["query"], model)
            assert "podinfo-canary" in query
            assert "5s" in query


def test_the_gateway_stand_in_accepts_only_its_routes_and_only_once_per_generation() -> None:
    route: dict[str, Any] = {
        "metadata": {"name": "podinfo", "namespace": "test", "generation": 3},
        "spec": {"parentRefs": [{"name": "demo-gateway", "namespace": "default"}]},
    }
    status = accepted_status(route, "demo-gateway", "default")
    assert status is not None
    (accepted,) = [c for c in status["parents"][0]["conditions"] if c["type"] == "Accepted"]
    assert accepted["status"] == "True"
    assert accepted["observedGeneration"] == 3
    assert accepted_status({**route, "status": status}, "demo-gateway", "default") is None
    newer = {**route, "metadata": {**route["metadata"], "generation": 4}, "status": status}
    assert accepted_status(newer, "demo-gateway", "default") is not None
    assert accepted_status(route, "other-gateway", "default") is None


async def test_the_demo_app_serves_each_version_as_configured_and_reports_per_backend() -> None:
    server = TrafficServer({"blue": VersionBehaviour(100.0, 1.0)})
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.put(
                f"{server.url}/version/green", json={"successRate": 0, "latencyMs": 1}
            ) as response:
                assert response.status == 200
            for version in ("blue", "green"):
                async with session.get(
                    f"{server.url}/version/{version}", params={"backend": f"b-{version}"}
                ) as response:
                    assert response.status == (200 if version == "blue" else 500)
            async with session.get(
                f"{server.url}/api/stats", params={"backend": "b-green", "window": "1m"}
            ) as response:
                assert (await response.json())["successRate"] == 0.0
            async with session.get(
                f"{server.url}/api/stats", params={"backend": "nobody", "window": "1m"}
            ) as response:
                assert (await response.json())["successRate"] is None
            async with session.put(
                f"{server.url}/version/green", json={"successRate": 140}
            ) as response:
                assert response.status == 400
            async with session.get(f"{server.url}/metrics") as response:
                text = await response.text()
            assert 'demo_requests_total{backend="b-green",code="500",version="green"} 1.0' in text
    finally:
        await server.stop()
