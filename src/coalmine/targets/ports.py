"""Port discovery (`spec.service.portDiscovery`): the pod template's container ports exposed as
extra TCP ports of the generated Services."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coalmine.api.models import CanaryService

SIDECAR_CONTAINERS = frozenset({"istio-proxy", "envoy"})


def discover_ports(service: CanaryService, pod_spec: Mapping[str, Any]) -> dict[str, int]:
    """Container port name → number, Flagger's getPorts.

    Sidecar proxies are skipped, and so is the port the main service port already targets (the
    numeric `targetPort`, the container port named like a string `targetPort`, or `port` when no
    `targetPort` is set). Unnamed ports are called `tcp-<container>-<index>`.
    """
    ports: dict[str, int] = {}
    target_port = service.target_port
    for container in pod_spec.get("containers") or []:
        container_name = str(container.get("name", ""))
        if container_name in SIDECAR_CONTAINERS:
            continue
        for index, port in enumerate(container.get("ports") or []):
            number = int(port.get("containerPort") or 0)
            name = port.get("name") or ""
            if target_port is None or target_port == 0 or target_port == "":
                if number == service.port:
                    continue
            elif isinstance(target_port, int):
                if number == target_port:
                    continue
            elif name == target_port:
                continue
            ports[name or f"tcp-{container_name}-{index}"] = number
    return ports
