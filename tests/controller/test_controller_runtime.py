"""The controller in-process on both tiers: bad input, duplicates, endpoints, SIGTERM-style stop.

A user's mistake becomes a condition and a Warning event on that canary only; other canaries
carry on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from coalmine.controller.runtime import Controller
from coalmine.kube.api import KubeApi
from coalmine.kube.kinds import CANARY, EVENT, SERVICE
from inprocess import admin_api, controller_on
from polling import eventually
from tiered import ApiServer


@pytest.fixture
def ns(apiserver: ApiServer) -> str:
    return apiserver.namespace


@pytest.fixture
async def api(apiserver: ApiServer) -> AsyncIterator[KubeApi]:
    """The user's client (admin)."""
    async with admin_api(apiserver) as client:
        yield client


@pytest.fixture
async def controller(apiserver: ApiServer, api: KubeApi) -> AsyncIterator[Controller]:
    async with controller_on(apiserver, interval=1.0) as running:
        yield running


def _async(check: Callable[[], bool]) -> Callable[[], Any]:
    async def predicate() -> bool:
        return check()

    return predicate


def service(ns: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": {"app": f"{name}-blue"}, "ports": [{"port": 80}]},
    }


def canary(ns: str, name: str, target: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "targetRef": {"apiVersion": "v1", "kind": "Service", "name": target},
            "service": {"port": 80},
            "analysis": {"interval": "1s", "threshold": 1, "iterations": 1},
            **spec,
        },
    }


async def phase_of(ns: str, api: KubeApi, name: str) -> str:
    obj = await api.get(CANARY, name, ns)
    return str((obj.get("status") or {}).get("phase") or "")


async def reaches(ns: str, api: KubeApi, name: str, phase: str) -> None:
    async def there() -> bool:
        return await phase_of(ns, api, name) == phase

    await eventually(there, what=f"canary {name} {phase}")


async def warnings(ns: str, api: KubeApi, name: str) -> list[str]:
    events = (await api.list(EVENT, ns)).items
    return [
        e["message"]
        for e in events
        if e["involvedObject"]["name"] == name and e["type"] == "Warning"
    ]


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for item in (obj.get("status") or {}).get("conditions") or []:
        if item.get("type") == kind:
            return dict(item)
    return None


async def test_an_invalid_canary_gets_a_condition_and_a_warning_naming_the_field_and_others_carry_on(
    ns: str, api: KubeApi, controller: Controller
) -> None:
    await api.create(SERVICE, service(ns, "good"))
    await api.create(SERVICE, service(ns, "bad"))
    bad = canary(ns, "bad", "bad")
    bad["spec"]["analysis"] = {"interval": "1s", "threshold": 1, "stepWeights": [20, 10]}
    await api.create(CANARY, bad)
    await api.create(CANARY, canary(ns, "good", "good"))

    async def refused() -> bool:
        return condition(await api.get(CANARY, "bad", ns), "Valid") is not None

    await eventually(refused)
    found = condition(await api.get(CANARY, "bad", ns), "Valid")
    assert found is not None
    assert found["status"] == "False"
    assert found["reason"] == "InvalidSpec"
    assert "spec.analysis.stepWeights[1]" in found["message"]
    assert any("spec.analysis.stepWeights[1]" in m for m in await warnings(ns, api, "bad"))

    await reaches(ns, api, "good", "Initialized")


async def test_fixing_an_invalid_canary_starts_it(
    ns: str, api: KubeApi, controller: Controller
) -> None:
    await api.create(SERVICE, service(ns, "podinfo"))
    bad = canary(ns, "podinfo", "podinfo")
    bad["spec"]["analysis"]["stepWeight"] = 0
    del bad["spec"]["analysis"]["iterations"]
    await api.create(CANARY, bad)

    async def refused() -> bool:
        return condition(await api.get(CANARY, "podinfo", ns), "Valid") is not None

    await eventually(refused)
    await api.patch(
        CANARY,
        "podinfo",
        {"spec": {"analysis": {"stepWeight": None, "iterations": 1}}},
        ns,
    )

    await reaches(ns, api, "podinfo", "Initialized")


async def test_a_missing_target_keeps_the_canary_initializing_with_an_event(
    ns: str, api: KubeApi, controller: Controller
) -> None:
    await api.create(CANARY, canary(ns, "ghost", "ghost"))

    async def warned() -> bool:
        return any("ghost" in m for m in await warnings(ns, api, "ghost"))

    await eventually(warned)
    assert await phase_of(ns, api, "ghost") == "Initializing"
    await api.create(SERVICE, service(ns, "ghost"))

    await reaches(ns, api, "ghost", "Initialized")


async def test_a_second_canary_on_the_same_target_is_refused(
    ns: str, api: KubeApi, controller: Controller
) -> None:
    await api.create(SERVICE, service(ns, "shared"))
    await api.create(CANARY, canary(ns, "first", "shared"))

    await reaches(ns, api, "first", "Initialized")
    await api.create(CANARY, canary(ns, "second", "shared"))

    async def second_refused() -> bool:
        return condition(await api.get(CANARY, "second", ns), "Valid") is not None

    await eventually(second_refused)
    found = condition(await api.get(CANARY, "second", ns), "Valid")
    assert found is not None
    assert found["reason"] == "DuplicateTarget"
    assert f"already released by canary first.{ns}" in found["message"]
    assert await phase_of(ns, api, "first") == "Initialized"


async def test_routing_the_provider_cannot_do_is_refused_with_the_reason(
    ns: str, api: KubeApi, controller: Controller
) -> None:
    """An A/B run on Kuma (no header routing) would send every request to the canary."""
    ab = {
        "interval": "1s",
        "threshold": 1,
        "iterations": 1,
        "match": [{"headers": {"x-canary": {"exact": "insider"}}}],
    }
    await api.create(SERVICE, service(ns, "mesh"))
    await api.create(CANARY, canary(ns, "mesh", "mesh", provider="kuma", analysis=ab))

    async def refused() -> bool:
        return condition(await api.get(CANARY, "mesh", ns), "Valid") is not None

    await eventually(refused)
    found = condition(await api.get(CANARY, "mesh", ns), "Valid")
    assert found is not None
    assert found["reason"] == "UnsupportedRouting"
    assert "the kuma router cannot route by header or cookie" in found["message"]


async def test_metrics_health_and_readiness_endpoints(
    ns: str, api: KubeApi, controller: Controller
) -> None:
    await api.create(SERVICE, service(ns, "podinfo"))
    await api.create(CANARY, canary(ns, "podinfo", "podinfo"))

    await reaches(ns, api, "podinfo", "Initialized")
    base = f"http://127.0.0.1:{controller.http_port}"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/healthz") as response:
            assert response.status == 200
        async with session.get(f"{base}/readyz") as response:
            assert response.status == 200
        async with session.get(f"{base}/metrics") as response:
            body = await response.text()
    assert 'flagger_info{mesh_provider="kubernetes"' in body
    assert f'flagger_canary_status{{name="podinfo",namespace="{ns}"}} 1.0' in body
    assert 'coalmine_kube_requests_total{resource="canaries.flagger.app",verb="list"}' in body


async def test_a_steady_canary_costs_no_api_requests_per_cycle(
    ns: str, api: KubeApi, controller: Controller
) -> None:
    await api.create(SERVICE, service(ns, "steady"))
    await api.create(CANARY, canary(ns, "steady", "steady"))

    await reaches(ns, api, "steady", "Initialized")
    await asyncio.sleep(1.5)
    reconciler = controller.reconciler
    assert reconciler is not None
    job = reconciler.jobs.get(f"steady.{ns}")
    assert job is not None
    before_requests = reconciler.api.request_total
    before_cycles = job.cycles
    await asyncio.sleep(3.5)
    cycles = job.cycles - before_cycles
    assert cycles >= 2
    requests = reconciler.api.request_total - before_requests
    assert requests <= cycles * 1.5, reconciler.api.requests


async def test_a_canary_at_rest_repeats_no_steps_until_an_object_it_read_changes(
    ns: str, api: KubeApi, controller: Controller
) -> None:
    await api.create(SERVICE, service(ns, "resting"))
    await api.create(CANARY, canary(ns, "resting", "resting"))

    await reaches(ns, api, "resting", "Initialized")
    reconciler = controller.reconciler
    assert reconciler is not None

    def unchanged() -> float:
        return (
            reconciler.metrics.registry.get_sample_value("coalmine_canary_cycles_unchanged_total")
            or 0.0
        )

    before = unchanged()
    await eventually(_async(lambda: unchanged() >= before + 2))
    # Someone edits the canary copy (kept in the target's shape every cycle) and deletes the
    # primary: the next cycle sees what it read changed, runs, and puts both back.
    copy = await api.get(SERVICE, "resting-canary", ns)
    wanted = copy["spec"]["selector"]
    copy["spec"]["selector"] = {"app": "tampered"}
    await api.replace(SERVICE, copy)
    await api.delete(SERVICE, "resting-primary", ns)

    async def put_back() -> bool:
        copy = await api.get(SERVICE, "resting-canary", ns)
        primary = await api.get_or_none(SERVICE, "resting-primary", ns)
        return copy["spec"]["selector"] == wanted and primary is not None

    await eventually(put_back)
    # A new revision of the target still starts a run.
    target = await api.get(SERVICE, "resting", ns)
    target["spec"]["selector"] = {"app": "resting-green"}
    await api.replace(SERVICE, target)

    async def progressing() -> bool:
        return await phase_of(ns, api, "resting") in {"Progressing", "Promoting", "Succeeded"}

    await eventually(progressing)


async def test_a_standby_replica_is_ready_before_it_leads(
    ns: str, apiserver: ApiServer, api: KubeApi
) -> None:
    from coalmine.kube.kinds import LEASE

    await api.create(
        LEASE,
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "flagger-leader-election", "namespace": ns},
            "spec": {"holderIdentity": "someone-else", "leaseDurationSeconds": 3600},
        },
    )
    settings = apiserver.controller_settings(
        enable_leader_election=True,
        leader_election_namespace=ns,
        leader_election_lease=3.0,
        leader_election_renew_deadline=2.0,
        leader_election_retry=0.5,
    )
    standby = Controller(settings)
    task = asyncio.create_task(standby.run())
    await eventually(_async(standby.is_ready))
    assert standby.reconciler is None
    base = f"http://127.0.0.1:{standby.http_port}"
    async with aiohttp.ClientSession() as session, session.get(f"{base}/readyz") as response:
        assert response.status == 200
    standby.stop()
    assert await asyncio.wait_for(task, 40) == 0


async def test_a_router_whose_crd_is_not_served_is_a_warning_not_a_hang(
    ns: str, api: KubeApi, controller: Controller
) -> None:
    await api.create(SERVICE, service(ns, "meshless"))
    await api.create(CANARY, canary(ns, "meshless", "meshless", provider="smi:v1alpha3"))

    async def warned() -> bool:
        return any("is its CRD installed?" in m for m in await warnings(ns, api, "meshless"))

    await eventually(warned)
    assert await phase_of(ns, api, "meshless") == "Initializing"


async def test_a_target_that_becomes_unroutable_is_refused_at_the_next_cycle(
    ns: str, api: KubeApi, controller: Controller, apiserver: ApiServer
) -> None:
    await api.create(SERVICE, service(ns, "split"))
    await api.create(CANARY, canary(ns, "split", "split", provider="linkerd"))

    await reaches(ns, api, "split", "Initialized")
    await api.replace(
        SERVICE,
        {
            **(await api.get(SERVICE, "split", ns)),
            "spec": {"type": "ExternalName", "externalName": "other.example.com"},
        },
    )

    async def refused() -> bool:
        return condition(await api.get(CANARY, "split", ns), "Valid") is not None

    await eventually(refused)
    found = condition(await api.get(CANARY, "split", ns), "Valid")
    assert found is not None
    assert found["reason"] == "UnsupportedRouting"
    assert "ExternalName" in found["message"]


async def test_a_refused_second_canary_takes_over_when_the_first_is_deleted(
    ns: str, api: KubeApi, controller: Controller
) -> None:
    await api.create(SERVICE, service(ns, "handover"))
    await api.create(CANARY, canary(ns, "old", "handover"))

    await reaches(ns, api, "old", "Initialized")
    await api.create(CANARY, canary(ns, "new", "handover"))

    async def new_refused() -> bool:
        return condition(await api.get(CANARY, "new", ns), "Valid") is not None

    await eventually(new_refused)
    await api.delete(CANARY, "old", ns)

    await reaches(ns, api, "new", "Initialized")
    assert condition(await api.get(CANARY, "new", ns), "Valid") is None
