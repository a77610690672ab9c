"""`KubeApi.list` items carry `apiVersion` and `kind` on both tiers: kube-apiserver leaves them
out of a built-in kind's list items, and code that tells cached objects apart by kind (the
routers' `find`) would not find the user's Ingress."""

from __future__ import annotations

from coalmine.kube.api import KubeApi, load_config
from coalmine.kube.kinds import CONFIG_MAP, INGRESS
from tiered import ApiServer


async def test_list_items_name_their_api_version_and_kind(apiserver: ApiServer) -> None:
    ns = apiserver.namespace
    api = KubeApi(load_config(str(apiserver.kubeconfig_path)))
    try:
        await api.create(
            CONFIG_MAP,
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": ns}},
        )
        backend = {"service": {"name": "podinfo", "port": {"number": 80}}}
        await api.create(
            INGRESS,
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {"name": "a", "namespace": ns},
                "spec": {"defaultBackend": backend},
            },
        )
        config_maps = (await api.list(CONFIG_MAP, ns)).items
        ingresses = (await api.list(INGRESS, ns)).items
    finally:
        await api.close()

    assert {(o["apiVersion"], o["kind"]) for o in config_maps} == {("v1", "ConfigMap")}
    assert [(o["apiVersion"], o["kind"]) for o in ingresses] == [
        ("networking.k8s.io/v1", "Ingress")
    ]
