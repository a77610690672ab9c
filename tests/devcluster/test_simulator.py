"""The workload simulator moves Deployment and DaemonSet status like the real controllers."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import polling
from coalmine.devcluster.simulator import (
    FAIL_ROLLOUT,
    ROLLOUT_DELAY,
    WorkloadSimulator,
    parse_duration,
)
from coalmine.devcluster.store import Store

Obj = dict[str, Any]


def deployment(
    name: str = "podinfo", replicas: int = 2, image: str = "podinfo:6.0", **meta: Any
) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", **meta},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


def daemonset(name: str = "agent", node_selector: dict[str, str] | None = None, **meta: Any) -> Obj:
    pod_spec: Obj = {"containers": [{"name": "agent", "image": "agent:1"}]}
    if node_selector is not None:
        pod_spec["nodeSelector"] = node_selector
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": "default", **meta},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
        },
    }


def condition(obj: Obj, type_: str) -> Obj:
    for entry in (obj.get("status") or {}).get("conditions") or []:
        if entry["type"] == type_:
            return dict(entry)
    return {}


async def eventually(read: Callable[[], Obj], predicate: Callable[[Obj], bool]) -> Obj:
    """Poll until `predicate(read())`; the simulator works on the event loop, so yield to it."""
    return await polling.eventually(
        lambda: obj if predicate(obj := read()) else None,
        5.0,
        "the simulated state",
        interval=0.005,
        detail=lambda: f"last status: {read().get('status')}",
    )


def rolled_out(obj: Obj) -> bool:
    status = obj.get("status") or {}
    return (
        status.get("observedGeneration") == obj["metadata"]["generation"]
        and condition(obj, "Progressing").get("reason") == "NewReplicaSetAvailable"
    )


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
async def simulator(store: Store) -> AsyncIterator[WorkloadSimulator]:
    async with WorkloadSimulator(store, rollout_delay=0, nodes=3) as sim:
        yield sim


def statuses(
    store: Store, storage: str = "deployments.apps"
) -> tuple[list[Obj], Callable[[], None]]:
    """Every status a watcher sees, in order (writes that leave the status alone are skipped)."""
    seen: list[Obj] = []

    def record(change: Any) -> None:
        if change.storage != storage or change.type != "MODIFIED":
            return
        status = change.entry.obj.get("status") or {}
        if status != ((change.old or {}).get("status") or {}):
            seen.append(dict(status))

    return seen, store.subscribe(record)


async def test_new_deployment_is_created_then_becomes_available(
    store: Store, simulator: WorkloadSimulator
) -> None:
    seen, unsubscribe = statuses(store)
    store.create(deployment(replicas=2))
    obj = await eventually(lambda: store.get("deployments", "podinfo", "default"), rolled_out)
    unsubscribe()

    status = obj["status"]
    assert status["replicas"] == status["updatedReplicas"] == 2
    assert status["readyReplicas"] == status["availableReplicas"] == 2
    assert "unavailableReplicas" not in status
    assert condition(obj, "Available")["reason"] == "MinimumReplicasAvailable"
    assert condition(obj, "Available")["status"] == "True"
    assert condition(obj, "Progressing")["message"].startswith('ReplicaSet "podinfo-')
    assert [c["type"] for c in status["conditions"]] == ["Available", "Progressing"]

    first = seen[0]
    assert first["observedGeneration"] == 1
    assert first.get("readyReplicas", 0) == 0
    assert first["unavailableReplicas"] == 2
    assert [c["reason"] for c in first["conditions"]] == [
        "MinimumReplicasUnavailable",
        "NewReplicaSetCreated",
    ]


async def test_template_change_rolls_out_a_new_replica_set(
    store: Store, simulator: WorkloadSimulator
) -> None:
    store.create(deployment())
    before = await eventually(lambda: store.get("deployments", "podinfo", "default"), rolled_out)
    seen, unsubscribe = statuses(store)
    store.patch(
        "deployments",
        "podinfo",
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "podinfo:6.1"}]}}}},
        "default",
        patch_type="strategic",
    )
    after = await eventually(
        lambda: store.get("deployments", "podinfo", "default"),
        lambda o: rolled_out(o) and o["metadata"]["generation"] == 2,
    )
    unsubscribe()
    assert seen[0]["observedGeneration"] == 2
    assert seen[0].get("updatedReplicas", 0) == 0
    assert seen[0]["readyReplicas"] == 2, "old pods stay ready during a rolling update"
    assert condition(after, "Progressing")["message"] != condition(before, "Progressing")["message"]
    assert (
        condition(after, "Available")["lastTransitionTime"]
        == condition(before, "Available")["lastTransitionTime"]
    )


async def test_fail_annotation_times_the_rollout_out_and_removing_it_recovers(
    store: Store, simulator: WorkloadSimulator
) -> None:
    store.create(deployment(annotations={FAIL_ROLLOUT: "true"}))
    failed = await eventually(
        lambda: store.get("deployments", "podinfo", "default"),
        lambda o: condition(o, "Progressing").get("status") == "False",
    )
    assert condition(failed, "Progressing")["reason"] == "ProgressDeadlineExceeded"
    assert condition(failed, "Progressing")["message"].endswith("has timed out progressing.")
    assert condition(failed, "Available")["status"] == "False"
    assert condition(failed, "Available")["reason"] == "MinimumReplicasUnavailable"
    assert failed["status"]["unavailableReplicas"] == 2
    assert "readyReplicas" not in failed["status"]

    store.patch(
        "deployments", "podinfo", {"metadata": {"annotations": {FAIL_ROLLOUT: None}}}, "default"
    )
    await eventually(lambda: store.get("deployments", "podinfo", "default"), rolled_out)


async def test_rollout_delay_annotation_holds_one_object_back(
    store: Store, simulator: WorkloadSimulator
) -> None:
    store.create(deployment("slow", annotations={ROLLOUT_DELAY: "1h"}))
    store.create(deployment("fast"))
    await eventually(lambda: store.get("deployments", "fast", "default"), rolled_out)
    slow = store.get("deployments", "slow", "default")
    assert slow["status"]["observedGeneration"] == 1
    assert condition(slow, "Progressing")["reason"] == "NewReplicaSetCreated"


async def test_scale_subresource_is_reflected_and_zero_counts_are_omitted(
    store: Store, simulator: WorkloadSimulator
) -> None:
    store.create(deployment(replicas=1))
    await eventually(lambda: store.get("deployments", "podinfo", "default"), rolled_out)
    scale = store.get_scale("deployments", "podinfo", "default")
    scale["spec"]["replicas"] = 4
    store.update_scale("deployments", "podinfo", scale, "default")
    scaled = await eventually(
        lambda: store.get("deployments", "podinfo", "default"),
        lambda o: (o.get("status") or {}).get("readyReplicas") == 4,
    )
    assert scaled["status"]["availableReplicas"] == 4
    assert store.get_scale("deployments", "podinfo", "default")["status"]["replicas"] == 4

    store.patch("deployments", "podinfo", {"spec": {"replicas": 0}}, "default")
    zero = await eventually(
        lambda: store.get("deployments", "podinfo", "default"),
        lambda o: rolled_out(o) and "replicas" not in o["status"],
    )
    assert set(zero["status"]) == {"observedGeneration", "conditions"}
    assert condition(zero, "Available")["status"] == "True"


async def test_paused_deployment_reports_paused(store: Store, simulator: WorkloadSimulator) -> None:
    store.create(deployment())
    await eventually(lambda: store.get("deployments", "podinfo", "default"), rolled_out)
    store.patch("deployments", "podinfo", {"spec": {"paused": True}}, "default")
    paused = await eventually(
        lambda: store.get("deployments", "podinfo", "default"),
        lambda o: condition(o, "Progressing").get("reason") == "DeploymentPaused",
    )
    assert condition(paused, "Progressing")["status"] == "Unknown"
    assert paused["status"]["observedGeneration"] == 2
    assert paused["status"]["readyReplicas"] == 2


def ds_ready(obj: Obj) -> bool:
    status = obj.get("status") or {}
    return (
        status.get("observedGeneration") == obj["metadata"]["generation"]
        and status.get("updatedNumberScheduled", 0) == status.get("desiredNumberScheduled")
        and status.get("numberUnavailable", 0) == 0
    )


async def test_daemonset_schedules_on_every_simulated_node(
    store: Store, simulator: WorkloadSimulator
) -> None:
    store.create(daemonset())
    obj = await eventually(lambda: store.get("daemonsets", "agent", "default"), ds_ready)
    assert obj["status"] == {
        "currentNumberScheduled": 3,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": 3,
        "numberReady": 3,
        "observedGeneration": 1,
        "updatedNumberScheduled": 3,
        "numberAvailable": 3,
    }


async def test_daemonset_scaled_to_zero_by_node_selector_has_no_desired_pods(
    store: Store, simulator: WorkloadSimulator
) -> None:
    store.create(daemonset())
    await eventually(lambda: store.get("daemonsets", "agent", "default"), ds_ready)
    store.patch(
        "daemonsets",
        "agent",
        {"spec": {"template": {"spec": {"nodeSelector": {"flagger.app/scale-to-zero": "true"}}}}},
        "default",
    )
    obj = await eventually(
        lambda: store.get("daemonsets", "agent", "default"),
        lambda o: o["status"]["observedGeneration"] == 2 and ds_ready(o),
    )
    assert obj["status"]["desiredNumberScheduled"] == 0
    assert obj["status"]["numberReady"] == 0
    store.create(daemonset("linux-only", {"kubernetes.io/os": "linux"}))
    linux = await eventually(lambda: store.get("daemonsets", "linux-only", "default"), ds_ready)
    assert linux["status"]["desiredNumberScheduled"] == 3


async def test_daemonset_fail_annotation_leaves_pods_unavailable(
    store: Store, simulator: WorkloadSimulator
) -> None:
    store.create(daemonset(annotations={FAIL_ROLLOUT: "true"}))
    obj = await eventually(
        lambda: store.get("daemonsets", "agent", "default"),
        lambda o: (
            (o.get("status") or {}).get("numberUnavailable") == 3
            and o["status"].get("updatedNumberScheduled") == 3
        ),
    )
    assert obj["status"]["numberReady"] == 0
    assert not ds_ready(obj)


async def test_existing_workloads_are_caught_up_on_start(store: Store) -> None:
    store.create(deployment("early"))
    store.create(daemonset("early-agent"))
    async with WorkloadSimulator(store, rollout_delay=0, nodes=1):
        await eventually(lambda: store.get("deployments", "early", "default"), rolled_out)
        await eventually(lambda: store.get("daemonsets", "early-agent", "default"), ds_ready)


async def test_deleting_a_workload_mid_rollout_and_stopping_leaves_nothing_pending(
    store: Store,
) -> None:
    sim = WorkloadSimulator(store, rollout_delay=3600)
    sim.start()
    store.create(deployment())
    store.delete("deployments", "podinfo", "default")
    await asyncio.sleep(0)
    store.create(deployment("kept"))
    sim.stop()
    store.create(deployment("after-stop"))
    await asyncio.sleep(0.02)
    assert not store.get("deployments", "after-stop", "default").get("status")


async def test_many_workloads_all_roll_out(store: Store, simulator: WorkloadSimulator) -> None:
    for index in range(300):
        store.create(deployment(f"app-{index}", replicas=1))
        store.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"config-{index}", "namespace": "default"},
                "data": {"index": str(index)},
            }
        )

    def all_rolled_out() -> Obj:
        items = store.list("deployments", "default")
        return {"done": all(rolled_out(item) for item in items), "status": len(items)}

    await eventually(all_rolled_out, lambda r: bool(r["done"]))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2s", 2.0), ("500ms", 0.5), ("1m30s", 90.0), ("1.5", 1.5), ("0", 0.0), ("1h", 3600.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "2x", "-1", "1s2"])
def test_parse_duration_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


async def test_invalid_delay_annotation_falls_back_to_the_default(
    store: Store, simulator: WorkloadSimulator
) -> None:
    store.create(deployment(annotations={ROLLOUT_DELAY: "whenever"}))
    await eventually(lambda: store.get("deployments", "podinfo", "default"), rolled_out)


async def test_lightkube_client_sees_the_rollout_and_scale(tmp_path: Path) -> None:
    from lightkube import AsyncClient, KubeConfig
    from lightkube.models.autoscaling_v1 import ScaleSpec
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.apps_v1 import Deployment

    from coalmine.devcluster import DevCluster

    async with DevCluster(
        port=0, rollout_delay=0, kubeconfig_path=tmp_path / "kubeconfig"
    ) as cluster:
        client = AsyncClient(KubeConfig.from_file(cluster.kubeconfig_path))
        try:
            await client.create(Deployment.from_dict(deployment(replicas=1)))

            async def read() -> Any:
                return await client.get(Deployment, "podinfo", namespace="default")

            async def wait_ready(replicas: int) -> Any:
                for _ in range(1000):
                    obj = await read()
                    status = obj.status
                    if (
                        status is not None
                        and (status.readyReplicas or 0) == replicas
                        and (status.observedGeneration == obj.metadata.generation)
                    ):
                        return obj
                    await asyncio.sleep(0.005)
                raise AssertionError("deployment never became ready")

            ready = await wait_ready(1)
            available = [c for c in ready.status.conditions if c.type == "Available"]
            assert available[0].status == "True"
            await client.replace(
                Deployment.Scale(
                    metadata=ObjectMeta(name="podinfo", namespace="default"),
                    spec=ScaleSpec(replicas=3),
                )
            )
            scaled = await wait_ready(3)
            assert scaled.status.availableReplicas == 3
        finally:
            await client.close()


def require_binary(name: str) -> str:
    """tests/conftest.py's `require_binary`, loaded by path: `import conftest` is ambiguous here
    (tests/devcluster has its own conftest) and `tests` is not a package on sys.path."""
    spec = importlib.util.spec_from_file_location(
        "coalmine_tests_conftest", Path(__file__).resolve().parents[1] / "conftest.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path: str = module.require_binary(name)
    return path


async def kubectl(kubeconfig: Path, *args: str) -> tuple[int, str]:
    """Run kubectl without blocking the loop that serves devcluster; (exit code, output)."""
    binary = require_binary("kubectl")
    process = await asyncio.create_subprocess_exec(
        binary,
        "--kubeconfig",
        str(kubeconfig),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, output.decode()


async def test_kubectl_rollout_status_follows_simulated_rollouts(tmp_path: Path) -> None:
    from coalmine.devcluster import DevCluster

    manifest = tmp_path / "deployment.json"
    manifest.write_text(json.dumps(deployment()))
    async with DevCluster(
        port=0, rollout_delay=0.05, kubeconfig_path=tmp_path / "kubeconfig"
    ) as cluster:
        config = cluster.kubeconfig_path
        code, output = await kubectl(config, "apply", "-f", str(manifest))
        assert code == 0, output
        code, output = await kubectl(
            config, "rollout", "status", "deployment/podinfo", "--timeout=30s"
        )
        assert code == 0, output
        assert 'deployment "podinfo" successfully rolled out' in output

        code, output = await kubectl(
            config, "annotate", "deployment", "podinfo", f"{FAIL_ROLLOUT}=true"
        )
        assert code == 0, output
        code, output = await kubectl(
            config, "set", "image", "deployment/podinfo", "app=podinfo:6.2"
        )
        assert code == 0, output
        code, output = await kubectl(
            config, "rollout", "status", "deployment/podinfo", "--timeout=30s"
        )
        assert code != 0
        assert 'deployment "podinfo" exceeded its progress deadline' in output


async def test_junk_status_and_strategy_do_not_stop_the_simulator(
    store: Store, simulator: WorkloadSimulator
) -> None:
    obj = deployment()
    obj["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": "oops"}
    store.create(obj)
    await eventually(lambda: store.get("deployments", "podinfo", "default"), rolled_out)
    current = store.get("deployments", "podinfo", "default")
    current["status"] = {"replicas": "many", "readyReplicas": True, "conditions": ["x", 3]}
    store.update_status(current)
    store.patch("deployments", "podinfo", {"spec": {"replicas": 3}}, "default")
    done = await eventually(
        lambda: store.get("deployments", "podinfo", "default"),
        lambda o: rolled_out(o) and o["status"].get("readyReplicas") == 3,
    )
    assert all(isinstance(c, dict) for c in done["status"]["conditions"])
