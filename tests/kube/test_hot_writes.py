"""The hot writes' lean path (status merge patches, Events over aiohttp): the same answers,
refusals and connection settings as the rest of the client, on both tiers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from coalmine.kube.api import (
    REQUEST_ERRORS,
    Conflict,
    KubeApi,
    KubeApiError,
    NotFound,
    load_config,
)
from coalmine.kube.events import EventRecorder
from coalmine.kube.kinds import CANARY, EVENT
from tiered import ApiServer


def canary(ns: str, name: str = "podinfo") -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "v1", "kind": "Service", "name": name},
            "service": {"port": 80},
            "analysis": {"interval": "10s", "threshold": 5, "iterations": 10},
        },
    }


async def test_a_status_patch_with_the_objects_uid_is_written_and_returned(
    ns: str, api: KubeApi
) -> None:
    created = await api.create(CANARY, canary(ns))
    uid = created["metadata"]["uid"]
    patch = {"metadata": {"uid": uid}, "status": {"phase": "Progressing", "iterations": 3}}
    written = await api.patch(CANARY, "podinfo", patch, ns, status=True)
    assert written["status"]["iterations"] == 3
    assert written["metadata"]["uid"] == uid
    read = await api.get(CANARY, "podinfo", ns)
    assert read["status"]["phase"] == "Progressing"
    assert read["metadata"]["resourceVersion"] == written["metadata"]["resourceVersion"]


async def test_a_status_patch_on_a_stale_resource_version_is_a_conflict_with_its_message(
    ns: str, api: KubeApi
) -> None:
    created = await api.create(CANARY, canary(ns))
    stale = created["metadata"]["resourceVersion"]
    await api.patch(CANARY, "podinfo", {"status": {"iterations": 1}}, ns, status=True)
    patch = {"metadata": {"resourceVersion": stale}, "status": {"iterations": 2}}
    with pytest.raises(Conflict) as refused:
        await api.patch(CANARY, "podinfo", patch, ns, status=True)
    assert "the object has been modified" in str(refused.value)
    assert (await api.get(CANARY, "podinfo", ns))["status"]["iterations"] == 1


async def test_a_status_patch_carrying_the_uid_of_another_object_is_not_refused_by_the_server(
    ns: str, api: KubeApi
) -> None:
    """Pinned because the status writer must not rely on it: the status subresource keeps the
    stored metadata, so kube-apiserver ignores a `metadata.uid` in the patch. The writer's own
    check (the Canary cache holds the same uid) is what keeps a re-created canary safe."""
    await api.create(CANARY, canary(ns))
    other = "00000000-0000-0000-0000-000000000000"
    patch = {"metadata": {"uid": other}, "status": {"iterations": 1}}
    written = await api.patch(CANARY, "podinfo", patch, ns, status=True)
    assert written["metadata"]["uid"] != other


async def test_an_invalid_status_is_refused_with_the_servers_422_message(
    ns: str, api: KubeApi
) -> None:
    await api.create(CANARY, canary(ns))
    with pytest.raises(KubeApiError) as refused:
        await api.patch(CANARY, "podinfo", {"status": {"iterations": "many"}}, ns, status=True)
    assert refused.value.code == 422
    assert refused.value.reason == "Invalid"
    assert "status.iterations" in str(refused.value)


async def test_a_status_patch_of_a_missing_canary_is_not_found(ns: str, api: KubeApi) -> None:
    with pytest.raises(NotFound):
        await api.patch(CANARY, "absent", {"status": {"iterations": 1}}, ns, status=True)


async def test_an_event_is_created_then_counted_through_the_lean_path(
    ns: str, api: KubeApi
) -> None:
    recorder = EventRecorder(api)
    involved = {**canary(ns), "metadata": {"name": "podinfo", "namespace": ns, "uid": "u-1"}}
    for _ in range(2):
        await recorder.record(involved, "Normal", "Advance podinfo.x canary iteration 1/10")
    events = (await api.list(EVENT, ns)).items
    assert [(e["message"], e["count"]) for e in events] == [
        ("Advance podinfo.x canary iteration 1/10", 2)
    ]
    assert events[0]["metadata"]["name"].startswith("podinfo.")
    assert api.requests["create events"] == 1
    assert api.requests["patch events"] == 1


async def test_an_unreachable_server_raises_a_request_error(apiserver: ApiServer) -> None:
    config = yaml.safe_load(apiserver.kubeconfig_path.read_text())
    config["clusters"][0]["cluster"]["server"] = "http://127.0.0.1:9"
    api = KubeApi(load_config(str(_write(apiserver, "closed", config))))
    try:
        with pytest.raises(REQUEST_ERRORS):
            await api.patch(CANARY, "podinfo", {"status": {}}, "default", status=True)
        with pytest.raises(REQUEST_ERRORS):
            await api.create(EVENT, {"metadata": {"namespace": "default", "name": "e"}})
    finally:
        await api.close()


# --- proxies -----------------------------------------------------------------------------------


@dataclass
class Proxy:
    """A forward proxy on loopback: absolute-form requests and CONNECT tunnels, noted."""

    url: str = ""
    seen: list[str] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        self.seen.append(f"{method} {target}")
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            address = target.split("/", 3)[2]
            host, port = address.rsplit(":", 1)
            upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
            upstream_writer.write(head)
        await asyncio.gather(
            _pipe(reader, upstream_writer), _pipe(upstream_reader, writer), return_exceptions=True
        )


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    finally:
        with contextlib.suppress(OSError):
            writer.close()


@pytest.fixture
async def proxy() -> AsyncIterator[Proxy]:
    found = Proxy()
    server = await asyncio.start_server(found.handle, "127.0.0.1", 0)
    found.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with server:
        yield found
        server.close()


def _proxy_environment(monkeypatch: pytest.MonkeyPatch, proxy_url: str, no_proxy: str) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    monkeypatch.setenv("HTTPS_PROXY", proxy_url)
    if no_proxy:
        monkeypatch.setenv("NO_PROXY", no_proxy)


async def test_the_hot_writes_go_through_the_environments_proxy(
    ns: str, apiserver: ApiServer, proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    _proxy_environment(monkeypatch, proxy.url, "")
    api = KubeApi(load_config(str(apiserver.kubeconfig_path)))
    try:
        await api.create(CANARY, canary(ns))
        proxy.seen.clear()  # lightkube's requests went through it too; count the hot write's
        await api.patch(CANARY, "podinfo", {"status": {"iterations": 2}}, ns, status=True)
    finally:
        await api.close()
    assert len(proxy.seen) == 1
    method, target = proxy.seen[0].split(" ")
    if apiserver.real:
        assert method == "CONNECT"  # TLS to the API server, tunnelled
    else:
        assert (method, target.split("?")[0].endswith("/canaries/podinfo/status")) == (
            "PATCH",
            True,
        )


async def test_no_proxy_keeps_the_hot_writes_direct(
    ns: str, apiserver: ApiServer, proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    _proxy_environment(monkeypatch, proxy.url, "127.0.0.1,localhost")
    api = KubeApi(load_config(str(apiserver.kubeconfig_path)))
    try:
        await api.create(CANARY, canary(ns))
        await api.patch(CANARY, "podinfo", {"status": {"iterations": 2}}, ns, status=True)
    finally:
        await api.close()
    assert proxy.seen == []


# --- TLS and credentials (the real control plane serves HTTPS and checks tokens) ---------------


@pytest.mark.realcluster_only("devcluster serves plain HTTP without authentication")
async def test_a_server_certificate_from_another_ca_is_refused(
    ns: str, apiserver: ApiServer
) -> None:
    config = yaml.safe_load(apiserver.kubeconfig_path.read_text())
    config["clusters"][0]["cluster"]["certificate-authority-data"] = _other_ca()
    config["clusters"][0]["cluster"].pop("certificate-authority", None)
    api = KubeApi(load_config(str(_write(apiserver, "other-ca", config))))
    try:
        with pytest.raises(REQUEST_ERRORS) as refused:
            await api.patch(CANARY, "podinfo", {"status": {}}, ns, status=True)
    finally:
        await api.close()
    assert "certificate" in str(refused.value).lower()


@pytest.mark.realcluster_only("devcluster serves plain HTTP without authentication")
async def test_a_rejected_token_is_a_401_refusal(ns: str, apiserver: ApiServer) -> None:
    config = yaml.safe_load(apiserver.controller_kubeconfig.read_text())
    user = config["users"][0]["user"]
    assert "token" in user, "the ServiceAccount's kubeconfig carries a bearer token"
    user["token"] = "not-a-token"
    api = KubeApi(load_config(str(_write(apiserver, "bad-token", config))))
    try:
        with pytest.raises(KubeApiError) as refused:
            await api.patch(CANARY, "podinfo", {"status": {}}, ns, status=True)
    finally:
        await api.close()
    assert refused.value.code == 401


def _write(apiserver: ApiServer, name: str, config: dict[str, Any]) -> Any:
    # Beside the original: a relative certificate path in it still resolves.
    path = apiserver.kubeconfig_path.with_name(f"kubeconfig-{apiserver.namespace}-{name}.yaml")
    path.write_text(yaml.safe_dump(config))
    return path


def _other_ca() -> str:
    """A self-signed CA certificate (base64 PEM) the API server's certificate is not from."""
    import base64
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not-the-cluster-ca")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.PEM)).decode()
