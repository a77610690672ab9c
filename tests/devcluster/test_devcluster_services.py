"""Services admitted as kube-apiserver admits them: defaults, IP and port allocation, messages."""

from __future__ import annotations

from typing import Any

from .dchelpers import APPLY, SVC, Raw


def service(name: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"selector": {"app": name}, "ports": [{"port": 80}]}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": body}


async def test_cluster_ip_service_gets_an_ip_and_kube_defaults(devcluster_http: Raw) -> None:
    reply = await devcluster_http.post(SVC, service("web"))
    assert reply.status == 201
    spec = reply.body["spec"]
    assert spec["clusterIP"].startswith("10.96.")
    assert spec["clusterIPs"] == [spec["clusterIP"]]
    assert spec["ipFamilies"] == ["IPv4"]
    assert spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert spec["sessionAffinity"] == "None"
    assert spec["type"] == "ClusterIP"
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]


async def test_requested_free_ip_is_honoured_and_a_taken_one_is_422(devcluster_http: Raw) -> None:
    reply = await devcluster_http.post(SVC, service("a", clusterIP="10.96.1.1"))
    assert reply.body["spec"]["clusterIPs"] == ["10.96.1.1"]
    reply = await devcluster_http.post(SVC, service("b", clusterIP="10.96.1.1"))
    assert reply.status == 422
    assert reply.message == (
        'Service "b" is invalid: spec.clusterIPs: Invalid value: ["10.96.1.1"]: failed to '
        "allocate IP 10.96.1.1: provided IP is already allocated"
    )
    assert reply.body["details"]["causes"][0]["field"] == "spec.clusterIPs"


async def test_ip_is_released_when_the_service_is_deleted(devcluster_http: Raw) -> None:
    await devcluster_http.post(SVC, service("a", clusterIP="10.96.2.2"))
    assert (await devcluster_http.delete(f"{SVC}/a")).status == 200
    reply = await devcluster_http.post(SVC, service("b", clusterIP="10.96.2.2"))
    assert reply.status == 201


async def test_changing_the_cluster_ip_is_422(devcluster_http: Raw) -> None:
    created = (await devcluster_http.post(SVC, service("a"))).body
    ip = created["spec"]["clusterIP"]
    created["spec"]["clusterIP"] = "10.96.3.3"
    created["spec"]["clusterIPs"] = ["10.96.3.3"]
    reply = await devcluster_http.put(f"{SVC}/a", created)
    assert reply.status == 422
    assert reply.message == (
        'Service "a" is invalid: spec.clusterIPs[0]: Invalid value: ["10.96.3.3"]: may not change '
        "once set"
    )
    assert (await devcluster_http.get(f"{SVC}/a")).body["spec"]["clusterIP"] == ip


async def test_cluster_ips_without_cluster_ip_is_422(devcluster_http: Raw) -> None:
    reply = await devcluster_http.post(SVC, service("a", clusterIPs=["10.96.4.4"]))
    assert reply.status == 422
    assert reply.message == (
        'Service "a" is invalid: spec.clusterIPs: Invalid value: ["10.96.4.4"]: must be '
        "empty when clusterIP is not specified"
    )


async def test_cluster_ips_must_start_with_cluster_ip(devcluster_http: Raw) -> None:
    reply = await devcluster_http.post(
        SVC, service("a", clusterIP="10.96.4.5", clusterIPs=["10.96.4.6"])
    )
    assert reply.status == 422
    assert (
        'spec.clusterIPs: Invalid value: ["10.96.4.6"]: first value must match `clusterIP`'
        in reply.message
    )


async def test_update_without_cluster_ip_keeps_the_allocated_one(devcluster_http: Raw) -> None:
    created = (await devcluster_http.post(SVC, service("a", type="NodePort"))).body
    body = service("a", type="NodePort")
    body["metadata"]["labels"] = {"x": "y"}
    reply = await devcluster_http.put(f"{SVC}/a", body)
    assert reply.status == 200
    assert reply.body["spec"]["clusterIP"] == created["spec"]["clusterIP"]
    assert reply.body["spec"]["clusterIPs"] == created["spec"]["clusterIPs"]
    assert reply.body["spec"]["ports"][0]["nodePort"] == created["spec"]["ports"][0]["nodePort"]


async def test_headless_service_has_no_ip(devcluster_http: Raw) -> None:
    reply = await devcluster_http.post(SVC, service("h", clusterIP="None"))
    assert reply.status == 201
    assert reply.body["spec"]["clusterIP"] == "None"
    assert reply.body["spec"]["clusterIPs"] == ["None"]


async def test_external_name_service_has_no_ip_and_refuses_one(devcluster_http: Raw) -> None:
    reply = await devcluster_http.post(
        SVC, service("ext", type="ExternalName", externalName="lb.example.com")
    )
    assert reply.status == 201
    assert "clusterIP" not in reply.body["spec"]
    assert "ipFamilies" not in reply.body["spec"]
    bad = await devcluster_http.post(
        SVC,
        service("ext2", type="ExternalName", externalName="lb.example.com", clusterIP="10.96.5.5"),
    )
    assert bad.status == 422
    assert "spec.clusterIPs: Forbidden: may not be set for ExternalName services" in bad.message


async def test_switching_to_external_name_releases_the_ip(devcluster_http: Raw) -> None:
    await devcluster_http.post(SVC, service("sw", clusterIP="10.96.6.6"))
    reply = await devcluster_http.patch(
        f"{SVC}/sw", {"spec": {"type": "ExternalName", "externalName": "x.example.com"}}
    )
    assert reply.status == 200
    assert "clusterIP" not in reply.body["spec"]
    assert (await devcluster_http.post(SVC, service("other", clusterIP="10.96.6.6"))).status == 201


async def test_node_ports_are_allocated_and_a_taken_one_is_422(devcluster_http: Raw) -> None:
    reply = await devcluster_http.post(
        SVC, service("np", type="NodePort", ports=[{"port": 80, "nodePort": 30080}])
    )
    assert reply.body["spec"]["ports"][0]["nodePort"] == 30080
    assert reply.body["spec"]["externalTrafficPolicy"] == "Cluster"
    auto = await devcluster_http.post(SVC, service("np2", type="NodePort"))
    assert 30000 <= auto.body["spec"]["ports"][0]["nodePort"] <= 32767
    taken = await devcluster_http.post(
        SVC, service("np3", type="NodePort", ports=[{"port": 80, "nodePort": 30080}])
    )
    assert taken.status == 422
    assert taken.message == (
        'Service "np3" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is '
        "already allocated"
    )
    await devcluster_http.delete(f"{SVC}/np")
    again = await devcluster_http.post(
        SVC, service("np4", type="NodePort", ports=[{"port": 80, "nodePort": 30080}])
    )
    assert again.status == 201


async def test_load_balancer_with_local_policy_gets_a_health_check_node_port(
    devcluster_http: Raw,
) -> None:
    reply = await devcluster_http.post(
        SVC, service("lb", type="LoadBalancer", externalTrafficPolicy="Local")
    )
    spec = reply.body["spec"]
    assert 30000 <= spec["healthCheckNodePort"] <= 32767
    assert spec["ports"][0]["nodePort"] != spec["healthCheckNodePort"]
    assert spec["allocateLoadBalancerNodePorts"] is True


async def test_node_port_on_a_cluster_ip_service_is_forbidden(devcluster_http: Raw) -> None:
    reply = await devcluster_http.post(SVC, service("f", ports=[{"port": 80, "nodePort": 30099}]))
    assert reply.status == 422
    assert (
        "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"
        in reply.message
    )


async def test_multiple_ports_need_names(devcluster_http: Raw) -> None:
    reply = await devcluster_http.post(SVC, service("mp", ports=[{"port": 80}, {"port": 81}]))
    assert reply.status == 422
    assert "spec.ports[0].name: Required value" in reply.message


async def test_service_names_must_be_rfc_1123_labels(devcluster_http: Raw) -> None:
    reply = await devcluster_http.post(SVC, service("a.b"))
    assert reply.status == 422
    assert "a lowercase RFC 1123 label must consist of lower case alphanumeric" in reply.message
    digit_first = await devcluster_http.post(SVC, service("1abc"))
    assert digit_first.status == 201, "allowed since Kubernetes 1.34, as kube-apiserver 1.36 does"


async def test_fields_of_the_wrong_json_type_are_400_not_a_crash(devcluster_http: Raw) -> None:
    wrong_spec = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "w"}, "spec": []}
    reply = await devcluster_http.post(SVC, wrong_spec)
    assert reply.status == 400
    assert reply.message == (
        "json: cannot unmarshal array into Go struct field Service.spec of type object"
    )
    wrong_ports = service("w2", ports="80")
    reply = await devcluster_http.post(SVC, wrong_ports)
    assert reply.status == 400
    assert reply.body["kind"] == "Status"


async def test_switching_external_name_to_cluster_ip_allocates_an_ip(devcluster_http: Raw) -> None:
    await devcluster_http.post(
        SVC, service("flip", type="ExternalName", externalName="a.example.com")
    )
    reply = await devcluster_http.patch(
        f"{SVC}/flip", {"spec": {"type": "ClusterIP", "externalName": None}}
    )
    assert reply.status == 200
    assert reply.body["spec"]["clusterIP"].startswith("10.")
    assert reply.body["spec"]["ipFamilies"] == ["IPv4"]


async def test_switching_node_port_to_cluster_ip_releases_the_port(devcluster_http: Raw) -> None:
    ports = [{"port": 80, "nodePort": 30555}]
    await devcluster_http.post(SVC, service("np", type="NodePort", ports=ports))
    reply = await devcluster_http.patch(f"{SVC}/np", {"spec": {"type": "ClusterIP"}})
    assert reply.status == 200
    assert "nodePort" not in reply.body["spec"]["ports"][0]
    assert "externalTrafficPolicy" not in reply.body["spec"]
    again = await devcluster_http.post(SVC, service("np2", type="NodePort", ports=ports))
    assert again.status == 201


async def test_server_side_apply_without_allocated_fields_keeps_them(devcluster_http: Raw) -> None:
    doc = (
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: copy\nspec:\n  type: NodePort\n"
        "  selector:\n    app: {app}\n  ports:\n  - name: http\n    port: 80\n"
    )
    path = f"{SVC}/copy?fieldManager=coalmine"
    first = await devcluster_http.patch(path, doc.format(app="blue"), content_type=APPLY)
    assert first.status == 201
    second = await devcluster_http.patch(path, doc.format(app="green"), content_type=APPLY)
    assert second.status == 200
    assert second.body["spec"]["selector"] == {"app": "green"}
    assert second.body["spec"]["clusterIP"] == first.body["spec"]["clusterIP"]
    assert second.body["spec"]["ports"][0]["nodePort"] == first.body["spec"]["ports"][0]["nodePort"]
