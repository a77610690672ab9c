"""A cycle's trace of its cached reads (`kube.reads`): what makes a cycle at rest repeatable."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from coalmine.kube import reads
from coalmine.kube.api import KubeApi
from coalmine.kube.cache import Caches, Informer
from coalmine.kube.context import ClusterContext
from coalmine.kube.kinds import CONFIG_MAP, SECRET
from coalmine.kube.reads import Trace, tracing

from .test_informer import configmap


async def test_a_trace_holds_while_every_object_it_read_is_still_the_cached_one(
    ns: str, api: KubeApi
) -> None:
    informer = Informer(api, CONFIG_MAP, ns)
    created = await api.create(CONFIG_MAP, configmap(ns, "read", v="1"))
    await informer.observe(created)
    trace = Trace()
    with tracing(trace):
        assert informer.get("read", ns) is not None
        assert informer.get("absent", ns) is None
    assert trace.holds()
    assert not trace.spoiled  # a cache read is no request

    changed = await api.patch(CONFIG_MAP, "read", {"data": {"v": "2"}}, ns)
    await informer.observe(changed)
    assert not trace.holds()

    again = Trace()
    with tracing(again):
        informer.get("read", ns)
        informer.get("absent", ns)
    assert again.holds()
    # an object that was missing and now exists is a change too
    await informer.observe(await api.create(CONFIG_MAP, configmap(ns, "absent", v="1")))
    assert not again.holds()


async def test_a_request_a_clock_a_list_or_an_on_demand_read_spoils_the_trace(
    ns: str, api: KubeApi
) -> None:
    caches = Caches(api, ns, on_demand=frozenset({SECRET}))
    context = ClusterContext(api, caches)
    spoilers: dict[str, Callable[[], object]] = {
        "a request": lambda: api.get_or_none(CONFIG_MAP, "nothing", ns),
        "the wall clock": context.now,
        "a list": caches[CONFIG_MAP].list,
        "an on-demand cache": lambda: caches.on_demand_cache(SECRET).get("s", ns),
    }
    for what, spoiler in spoilers.items():
        trace = Trace()
        with tracing(trace):
            result = spoiler()
            if inspect.isawaitable(result):
                await result
        assert trace.spoiled, what
        assert not trace.holds(), what


async def test_reads_outside_a_cycle_and_an_informer_a_cycle_started_reach_no_trace(
    ns: str, api: KubeApi
) -> None:
    caches = Caches(api, ns)
    assert reads.current() is None
    caches[CONFIG_MAP].get("outside", ns)  # no trace: nothing recorded, nothing fails
    trace = Trace()
    with tracing(trace):
        informer = await caches.synced(CONFIG_MAP)  # starts the informer: a list, a watch
    # The informer's own requests run in a context of their own, not in the cycle's.
    await api.create(CONFIG_MAP, configmap(ns, "later", v="1"))
    assert not trace.spoiled
    await informer.stop()
    assert reads.current() is None
