"""Events worded as Flagger's, aggregated on repeat; leader election hand-over."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from coalmine.kube.api import KubeApi, load_config
from coalmine.kube.events import EventRecorder
from coalmine.kube.kinds import EVENT, LEASE
from coalmine.kube.lease import LeaderElector, LeaseTimings
from tiered import ApiServer


@pytest.fixture
async def api(apiserver: ApiServer) -> AsyncIterator[KubeApi]:
    """The controller's client: events and leases are written as its ServiceAccount."""
    client = KubeApi(load_config(str(apiserver.controller_kubeconfig)))
    yield client
    await client.close()


FAST = LeaseTimings(lease_duration=2.0, renew_deadline=1.0, retry_period=0.2)


def canary_object(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": ns, "uid": "u-1"},
    }


async def test_an_event_names_the_canary_with_flaggers_reason_and_source(
    ns: str, api: KubeApi, admin: KubeApi
) -> None:
    recorder = EventRecorder(api)
    await recorder.record(canary_object(ns), "Normal", f"Initialization done! podinfo.{ns}")
    events = (await admin.list(EVENT, ns)).items
    assert len(events) == 1
    event = events[0]
    assert event["reason"] == "Synced"
    assert event["source"] == {"component": "flagger"}
    assert event["involvedObject"]["kind"] == "Canary"
    assert event["involvedObject"]["name"] == "podinfo"
    assert event["message"] == f"Initialization done! podinfo.{ns}"


async def test_a_repeated_event_is_counted_not_duplicated(
    ns: str, api: KubeApi, admin: KubeApi
) -> None:
    recorder = EventRecorder(api)
    for _ in range(3):
        await recorder.record(canary_object(ns), "Warning", "Halt advancement")
    events = (await admin.list(EVENT, ns)).items
    assert [event["count"] for event in events] == [3]


async def test_a_repeating_message_stays_remembered_while_one_off_messages_are_forgotten(
    ns: str,
    api: KubeApi,
    admin: KubeApi,
) -> None:
    recorder = EventRecorder(api, max_remembered=2)
    await recorder.record(canary_object(ns), "Warning", "Halt advancement")
    await recorder.record(canary_object(ns), "Normal", "Advance iteration 1")
    await recorder.record(canary_object(ns), "Warning", "Halt advancement")
    await recorder.record(canary_object(ns), "Normal", "Advance iteration 2")
    await recorder.record(canary_object(ns), "Warning", "Halt advancement")
    await recorder.record(canary_object(ns), "Normal", "Advance iteration 3")
    await recorder.record(canary_object(ns), "Normal", "Advance iteration 4")
    await recorder.record(canary_object(ns), "Normal", "Advance iteration 1")
    events = (await admin.list(EVENT, ns)).items
    counts = sorted((event["message"], event["count"]) for event in events)
    assert counts == [
        ("Advance iteration 1", 1),
        ("Advance iteration 1", 1),
        ("Advance iteration 2", 1),
        ("Advance iteration 3", 1),
        ("Advance iteration 4", 1),
        ("Halt advancement", 3),
    ]


@pytest.mark.devcluster_only("needs devcluster's fault injection")
async def test_a_failing_event_write_never_raises(
    ns: str, api: KubeApi, apiserver: ApiServer
) -> None:
    apiserver.hooks.faults.inject_error(
        code=500, reason="InternalError", message="down", verb="create"
    )
    await EventRecorder(api).record(canary_object(ns), "Normal", "lost")


async def test_only_one_elector_leads_and_a_standby_takes_over_after_release(
    ns: str,
    api: KubeApi,
) -> None:
    first = LeaderElector(api, ns, identity="first", timings=FAST)
    second = LeaderElector(api, ns, identity="second", timings=FAST)
    first_leads = asyncio.Event()
    stop_first = asyncio.Event()
    second_leads = asyncio.Event()

    async def lead_first() -> None:
        first_leads.set()
        await stop_first.wait()

    async def lead_second() -> None:
        second_leads.set()
        await asyncio.Event().wait()

    first_task = asyncio.create_task(first.run(lead_first))
    await asyncio.wait_for(first_leads.wait(), 10)
    second_task = asyncio.create_task(second.run(lead_second))
    await asyncio.sleep(FAST.retry_period * 3)
    assert not second_leads.is_set()
    stop_first.set()
    await asyncio.wait_for(first_task, 10)
    await asyncio.wait_for(second_leads.wait(), 10)
    lease = await api.get(LEASE, "flagger-leader-election", ns)
    assert lease["spec"]["holderIdentity"] == "second"
    assert lease["spec"]["leaseTransitions"] >= 1
    second_task.cancel()


@pytest.mark.devcluster_only("needs devcluster's fault injection")
async def test_a_leader_that_cannot_renew_stops_leading_before_the_lease_expires(
    ns: str, api: KubeApi, apiserver: ApiServer
) -> None:
    elector = LeaderElector(api, ns, identity="flaky", timings=FAST)
    leading = asyncio.Event()
    cancelled = asyncio.Event()

    async def lead() -> None:
        leading.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    task = asyncio.create_task(elector.run(lead))
    await asyncio.wait_for(leading.wait(), 10)
    apiserver.hooks.faults.inject_error(
        code=500, reason="InternalError", message="etcd down", resource="leases", count=None
    )
    await asyncio.wait_for(task, 10)
    assert cancelled.is_set()
    assert not elector.is_leader
