"""The client's cap on requests in flight: a burst queues, failed requests give their slot back."""

from __future__ import annotations

import asyncio

from coalmine.kube.api import KubeApi, load_config
from coalmine.kube.kinds import CONFIG_MAP
from tiered import ApiServer


async def test_a_burst_beyond_the_cap_completes_and_failures_release_their_slot(
    ns: str,
    apiserver: ApiServer,
) -> None:
    api = KubeApi(load_config(str(apiserver.kubeconfig_path)), max_in_flight=2)
    try:
        configmap = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "present", "namespace": ns},
            "data": {"a": "b"},
        }
        await api.create(CONFIG_MAP, configmap)
        async with asyncio.timeout(30):
            missing = await asyncio.gather(
                *(api.get_or_none(CONFIG_MAP, f"missing-{i}", ns) for i in range(30))
            )
            found = await asyncio.gather(*(api.get(CONFIG_MAP, "present", ns) for _ in range(30)))
        assert missing == [None] * 30
        assert {obj["data"]["a"] for obj in found} == {"b"}
    finally:
        await api.close()
