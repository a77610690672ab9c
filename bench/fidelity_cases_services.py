"""Service cases: clusterIP/clusterIPs/ipFamilies/ipFamilyPolicy/nodePort rules on create and update,
type switches, and what a Flagger-style copy of a Service does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fidelity_battery import JSON_PATCH, MERGE, add, case, service

Spec = Callable[[Any], dict[str, Any]]

# name -> spec builder (given the Run, for requested IPs and ports)
CREATES: dict[str, Spec] = {
    "plain ClusterIP": lambda r: {},
    "requested clusterIP": lambda r: {"clusterIP": r.ip(1)},
    "requested clusterIP and matching clusterIPs": lambda r: {
        "clusterIP": r.ip(2),
        "clusterIPs": [r.ip(2)],
    },
    "clusterIPs without clusterIP": lambda r: {"clusterIPs": [r.ip(3)]},
    "clusterIP and clusterIPs disagree": lambda r: {"clusterIP": r.ip(4), "clusterIPs": [r.ip(5)]},
    "clusterIP outside the range": lambda r: {"clusterIP": "192.0.2.10"},
    "clusterIP not an IP": lambda r: {"clusterIP": "not-an-ip"},
    "headless with selector": lambda r: {"clusterIP": "None"},
    "headless without selector": lambda r: {"clusterIP": "None", "selector": None},
    "two clusterIPs": lambda r: {
        "clusterIPs": [r.ip(6), "fd00::10"],
        "clusterIP": r.ip(6),
    },
    "ipFamilies IPv6 only": lambda r: {"ipFamilies": ["IPv6"]},
    "ipFamilies IPv4 and IPv6": lambda r: {"ipFamilies": ["IPv4", "IPv6"]},
    "ipFamilyPolicy PreferDualStack": lambda r: {"ipFamilyPolicy": "PreferDualStack"},
    "ipFamilyPolicy RequireDualStack": lambda r: {"ipFamilyPolicy": "RequireDualStack"},
    "ipFamilyPolicy unknown": lambda r: {"ipFamilyPolicy": "Sometimes"},
    "NodePort allocated": lambda r: {"type": "NodePort"},
    "NodePort requested": lambda r: {
        "type": "NodePort",
        "ports": [{"port": 80, "nodePort": r.port(1)}],
    },
    "NodePort out of range": lambda r: {
        "type": "NodePort",
        "ports": [{"port": 80, "nodePort": 80}],
    },
    "nodePort on a ClusterIP Service": lambda r: {"ports": [{"port": 80, "nodePort": r.port(2)}]},
    "two ports with the same nodePort": lambda r: {
        "type": "NodePort",
        "ports": [
            {"name": "a", "port": 80, "nodePort": r.port(3)},
            {"name": "b", "port": 81, "nodePort": r.port(3)},
        ],
    },
    "LoadBalancer": lambda r: {"type": "LoadBalancer"},
    "LoadBalancer with Local traffic policy": lambda r: {
        "type": "LoadBalancer",
        "externalTrafficPolicy": "Local",
    },
    "LoadBalancer without node ports": lambda r: {
        "type": "LoadBalancer",
        "allocateLoadBalancerNodePorts": False,
    },
    "ExternalName": lambda r: {
        "type": "ExternalName",
        "externalName": "example.com",
        "ports": None,
    },
    "ExternalName with a clusterIP": lambda r: {
        "type": "ExternalName",
        "externalName": "example.com",
        "clusterIP": r.ip(7),
    },
    "ExternalName without externalName": lambda r: {"type": "ExternalName"},
    "ExternalName with an invalid name": lambda r: {
        "type": "ExternalName",
        "externalName": "Not_A_Host",
    },
    "no ports": lambda r: {"ports": []},
    "two ports without names": lambda r: {"ports": [{"port": 80}, {"port": 81}]},
    "duplicate port names": lambda r: {
        "ports": [{"name": "a", "port": 80}, {"name": "a", "port": 81}]
    },
    "port zero": lambda r: {"ports": [{"port": 0}]},
    "unknown protocol": lambda r: {"ports": [{"port": 80, "protocol": "HTTP"}]},
    "unknown type": lambda r: {"type": "Magic"},
    "named targetPort": lambda r: {"ports": [{"port": 80, "targetPort": "http", "name": "web"}]},
    "sessionAffinity ClientIP": lambda r: {"sessionAffinity": "ClientIP"},
    "internalTrafficPolicy Local": lambda r: {"internalTrafficPolicy": "Local"},
    "externalTrafficPolicy on ClusterIP": lambda r: {"externalTrafficPolicy": "Local"},
    "publishNotReadyAddresses": lambda r: {"publishNotReadyAddresses": True},
}


def _create_case(spec: Spec) -> Any:
    async def run(r: Any) -> None:
        body = service("svc", **spec(r))
        body["spec"] = {k: v for k, v in body["spec"].items() if v is not None}
        await r.req("POST", r.path("services"), body)
        await r.req("GET", r.path("services", "svc"))

    return run


for _name, _spec in CREATES.items():
    add(f"service create: {_name}", _create_case(_spec))


@case("service create: name must be a DNS-1035 label")
async def _svc_name(r: Any) -> None:
    await r.req("POST", r.path("services"), service("1svc"))


@case("service create: a requested clusterIP already in use")
async def _svc_taken(r: Any) -> None:
    await r.req("POST", r.path("services"), service("a", clusterIP=r.ip(8)))
    await r.req("POST", r.path("services"), service("b", clusterIP=r.ip(8)))


@case("service create: Flagger's copy keeps the target's clusterIPs")
async def _svc_flagger_copy(r: Any) -> None:
    target = await r.req("POST", r.path("services"), service("podinfo"))
    spec = dict(target.body["spec"])
    copy = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "podinfo-primary"}}
    copy["spec"] = {**spec, "clusterIP": "", "selector": {"app": "podinfo-primary"}}
    await r.req("POST", r.path("services"), copy)


@case("service create: coalmine's copy drops the allocated fields")
async def _svc_coalmine_copy(r: Any) -> None:
    target = await r.req("POST", r.path("services"), service("podinfo", type="NodePort"))
    spec = {
        k: v
        for k, v in target.body["spec"].items()
        if k not in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy")
    }
    spec["ports"] = [{k: v for k, v in p.items() if k != "nodePort"} for p in spec["ports"]]
    spec["selector"] = {"app": "podinfo-primary"}
    copy = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "podinfo-primary"}}
    await r.req("POST", r.path("services"), {**copy, "spec": spec})


# name -> (initial spec, merge patch or full-spec updater, method)
UPDATES: dict[str, tuple[Spec, Callable[[Any, dict[str, Any]], dict[str, Any]], str]] = {
    "ClusterIP to ExternalName keeping clusterIP": (
        lambda r: {},
        lambda r, s: {**s, "type": "ExternalName", "externalName": "example.com"},
        "PUT",
    ),
    "ClusterIP to ExternalName clearing clusterIP": (
        lambda r: {},
        lambda r, s: {
            **{k: v for k, v in s.items() if k not in ("clusterIP", "clusterIPs")},
            "type": "ExternalName",
            "externalName": "example.com",
        },
        "PUT",
    ),
    "ExternalName to ClusterIP": (
        lambda r: {"type": "ExternalName", "externalName": "example.com"},
        lambda r, s: {**s, "type": "ClusterIP", "externalName": None},
        "PUT",
    ),
    "ExternalName to ClusterIP with a requested IP": (
        lambda r: {"type": "ExternalName", "externalName": "example.com"},
        lambda r, s: {**s, "type": "ClusterIP", "externalName": None, "clusterIP": r.ip(9)},
        "PUT",
    ),
    "ClusterIP to NodePort": (lambda r: {}, lambda r, s: {**s, "type": "NodePort"}, "PUT"),
    "NodePort to ClusterIP keeping nodePort": (
        lambda r: {"type": "NodePort"},
        lambda r, s: {**s, "type": "ClusterIP"},
        "PUT",
    ),
    "LoadBalancer to ClusterIP": (
        lambda r: {"type": "LoadBalancer"},
        lambda r, s: {**s, "type": "ClusterIP"},
        "PUT",
    ),
    "change clusterIP": (
        lambda r: {"clusterIP": r.ip(10)},
        lambda r, s: {**s, "clusterIP": r.ip(11), "clusterIPs": [r.ip(11)]},
        "PUT",
    ),
    "PUT without clusterIP keeps it": (
        lambda r: {"clusterIP": r.ip(12)},
        lambda r, s: {k: v for k, v in s.items() if k not in ("clusterIP", "clusterIPs")},
        "PUT",
    ),
    "PUT without nodePort keeps it": (
        lambda r: {"type": "NodePort", "ports": [{"port": 80, "nodePort": r.port(4)}]},
        lambda r, s: {**s, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]},
        "PUT",
    ),
    "headless to ClusterIP": (
        lambda r: {"clusterIP": "None"},
        lambda r, s: {**s, "clusterIP": "", "clusterIPs": None},
        "PUT",
    ),
    "SingleStack to PreferDualStack": (
        lambda r: {},
        lambda r, s: {**s, "ipFamilyPolicy": "PreferDualStack"},
        "PUT",
    ),
    "add IPv6 family": (
        lambda r: {},
        lambda r, s: {**s, "ipFamilies": ["IPv4", "IPv6"]},
        "PUT",
    ),
    "change nodePort": (
        lambda r: {"type": "NodePort", "ports": [{"port": 80, "nodePort": r.port(5)}]},
        lambda r, s: {**s, "ports": [{"port": 80, "nodePort": r.port(6)}]},
        "PUT",
    ),
    "merge patch selector": (
        lambda r: {},
        lambda r, s: {"spec": {"selector": {"app": "other"}}},
        "PATCH",
    ),
    "merge patch type NodePort": (
        lambda r: {},
        lambda r, s: {"spec": {"type": "NodePort"}},
        "PATCH",
    ),
    "merge patch type ExternalName": (
        lambda r: {},
        lambda r, s: {"spec": {"type": "ExternalName", "externalName": "example.com"}},
        "PATCH",
    ),
    "merge patch clearing clusterIP": (
        lambda r: {},
        lambda r, s: {"spec": {"clusterIP": None}},
        "PATCH",
    ),
}


def _update_case(
    initial: Spec, change: Callable[[Any, dict[str, Any]], dict[str, Any]], method: str
) -> Any:
    async def run(r: Any) -> None:
        body = service("svc", **initial(r))
        created = await r.req("POST", r.path("services"), body)
        if created.status >= 300:
            return
        live = created.body
        if method == "PUT":
            spec = {k: v for k, v in change(r, dict(live["spec"])).items() if v is not None}
            updated = {**live, "spec": spec}
            await r.req("PUT", r.path("services", "svc"), updated)
        else:
            await r.req("PATCH", r.path("services", "svc"), change(r, live["spec"]), MERGE)
        await r.req("GET", r.path("services", "svc"))

    return run


for _name, (_initial, _change, _method) in UPDATES.items():
    add(f"service update: {_name}", _update_case(_initial, _change, _method))


@case("service update: json patch replacing the ports")
async def _svc_json_patch(r: Any) -> None:
    await r.req("POST", r.path("services"), service("svc"))
    patch = [{"op": "replace", "path": "/spec/ports", "value": [{"port": 8080, "name": "http"}]}]
    await r.req("PATCH", r.path("services", "svc"), patch, JSON_PATCH)


@case("service status: loadBalancer ingress through /status", keep_status=True)
async def _svc_status(r: Any) -> None:
    created = await r.req("POST", r.path("services"), service("svc", type="LoadBalancer"))
    body = {**created.body, "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}}
    await r.req("PUT", r.path("services", "svc", sub="status"), body)
    await r.req("GET", r.path("services", "svc"))
