"""Decoding of the protobuf bodies kubectl's generator commands send (`kubectl create namespace`,
`configmap`, `secret`, `serviceaccount`, `deployment`, `service`).

Typed Go clients send built-in objects as protobuf; everything else about devcluster is JSON. This
decodes just the kinds and fields those commands write, from the wire format and the field
numbers of k8s.io/api's `generated.proto`. Go's protobuf writes every non-pointer field, so zero
values are treated as absent (as JSON's omitempty would). Any other kind, or a non-empty field
not known here, is refused with 415 and a message that says to send JSON (`kubectl apply -f`).
"""

from __future__ import annotations

import base64
from typing import Any

from coalmine.devcluster.errors import ApiError

MAGIC = b"k8s\x00"

# field number -> (json name, type); a type is "str", "int", "bool", "bytes", "map", "map:bytes",
# "intorstr", a message name, or any of these prefixed with "[]" (repeated).
Schema = dict[int, tuple[str, str]]

SCHEMAS: dict[str, Schema] = {
    "ObjectMeta": {
        1: ("name", "str"),
        2: ("generateName", "str"),
        3: ("namespace", "str"),
        11: ("labels", "map"),
        12: ("annotations", "map"),
        13: ("ownerReferences", "[]OwnerReference"),
        14: ("finalizers", "[]str"),
    },
    "OwnerReference": {
        1: ("kind", "str"),
        3: ("name", "str"),
        4: ("uid", "str"),
        5: ("apiVersion", "str"),
        6: ("controller", "bool"),
        7: ("blockOwnerDeletion", "bool"),
    },
    "Namespace": {1: ("metadata", "ObjectMeta"), 2: ("spec", "NamespaceSpec")},
    "NamespaceSpec": {1: ("finalizers", "[]str")},
    "ConfigMap": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "map"),
        3: ("binaryData", "map:bytes"),
        4: ("immutable", "bool"),
    },
    "Secret": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "map:bytes"),
        3: ("type", "str"),
        4: ("stringData", "map"),
        5: ("immutable", "bool"),
    },
    "ServiceAccount": {1: ("metadata", "ObjectMeta"), 4: ("automountServiceAccountToken", "bool")},
    "Service": {1: ("metadata", "ObjectMeta"), 2: ("spec", "ServiceSpec")},
    "ServiceSpec": {
        1: ("ports", "[]ServicePort"),
        2: ("selector", "map"),
        3: ("clusterIP", "str"),
        4: ("type", "str"),
        5: ("externalIPs", "[]str"),
        7: ("sessionAffinity", "str"),
        8: ("loadBalancerIP", "str"),
        10: ("externalName", "str"),
        11: ("externalTrafficPolicy", "str"),
        12: ("healthCheckNodePort", "int"),
        13: ("publishNotReadyAddresses", "bool"),
    },
    "ServicePort": {
        1: ("name", "str"),
        2: ("protocol", "str"),
        3: ("port", "int"),
        4: ("targetPort", "intorstr"),
        5: ("nodePort", "int"),
        6: ("appProtocol", "str"),
    },
    "Deployment": {1: ("metadata", "ObjectMeta"), 2: ("spec", "DeploymentSpec")},
    "DeploymentSpec": {
        1: ("replicas", "int"),
        2: ("selector", "LabelSelector"),
        3: ("template", "PodTemplateSpec"),
        4: ("strategy", "DeploymentStrategy"),
        5: ("minReadySeconds", "int"),
        6: ("revisionHistoryLimit", "int"),
        7: ("paused", "bool"),
        9: ("progressDeadlineSeconds", "int"),
    },
    "DeploymentStrategy": {1: ("type", "str"), 2: ("rollingUpdate", "RollingUpdateDeployment")},
    "RollingUpdateDeployment": {1: ("maxUnavailable", "intorstr"), 2: ("maxSurge", "intorstr")},
    "LabelSelector": {
        1: ("matchLabels", "map"),
        2: ("matchExpressions", "[]LabelSelectorRequirement"),
    },
    "LabelSelectorRequirement": {1: ("key", "str"), 2: ("operator", "str"), 3: ("values", "[]str")},
    "PodTemplateSpec": {1: ("metadata", "ObjectMeta"), 2: ("spec", "PodSpec")},
    "PodSpec": {2: ("containers", "[]Container")},
    "Container": {
        1: ("name", "str"),
        2: ("image", "str"),
        3: ("command", "[]str"),
        4: ("args", "[]str"),
        5: ("workingDir", "str"),
        6: ("ports", "[]ContainerPort"),
        7: ("env", "[]EnvVar"),
        14: ("imagePullPolicy", "str"),
    },
    "ContainerPort": {
        1: ("name", "str"),
        2: ("hostPort", "int"),
        3: ("containerPort", "int"),
        4: ("protocol", "str"),
        5: ("hostIP", "str"),
    },
    "EnvVar": {1: ("name", "str"), 2: ("value", "str")},
}
KINDS = {"Namespace", "ConfigMap", "Secret", "ServiceAccount", "Service", "Deployment"}
# Fields the server sets or ignores on create; skipped even when non-empty.
IGNORED = {
    "ObjectMeta": {4, 5, 6, 7, 8, 9, 10, 17},
    "Namespace": {3},
    "Service": {3},
    "Deployment": {3},
}


def _varint(data: bytes, index: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if index >= len(data):
            raise ValueError("truncated varint")
        byte = data[index]
        index += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, index


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    out: list[tuple[int, int | bytes]] = []
    index = 0
    while index < len(data):
        key, index = _varint(data, index)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, index = _varint(data, index)
            out.append((number, value))
        elif wire == 2:
            length, index = _varint(data, index)
            out.append((number, data[index : index + length]))
            index += length
        elif wire == 1:
            index += 8
        elif wire == 5:
            index += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return out


def _refuse(detail: str) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"devcluster cannot decode this protobuf body ({detail}); send JSON instead "
        "(for example kubectl apply -f or kubectl create -f)",
    )


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _scalar(kind: str, raw: int | bytes) -> Any:
    if kind == "str":
        return raw.decode() if isinstance(raw, bytes) else None
    if kind == "bytes":
        return base64.b64encode(raw).decode() if isinstance(raw, bytes) else None
    if kind == "int":
        return _signed(raw) if isinstance(raw, int) else None
    if kind == "bool":
        return bool(raw) if isinstance(raw, int) else None
    if kind == "intorstr":
        if not isinstance(raw, bytes):
            return None
        parts = dict(_fields(raw))
        if parts.get(1, 0) == 1:
            value = parts.get(3, b"")
            return value.decode() if isinstance(value, bytes) else None
        number = parts.get(2, 0)
        return _signed(number) if isinstance(number, int) else None
    if not isinstance(raw, bytes):
        return None
    return _message(kind, raw)


def _empty(value: Any) -> bool:
    return value in (None, "", b"", 0, False, {}, [])


def _message(name: str, data: bytes) -> dict[str, Any]:
    schema = SCHEMAS[name]
    ignored = IGNORED.get(name, set())
    out: dict[str, Any] = {}
    for number, raw in _fields(data):
        if number in ignored:
            continue
        field = schema.get(number)
        if field is None:
            if not _empty(raw):
                raise _refuse(f"{name} field {number}")
            continue
        json_name, kind = field
        if kind.startswith("map"):
            if not isinstance(raw, bytes):
                continue
            entry = dict(_fields(raw))
            key = entry.get(1, b"")
            value = entry.get(2, b"")
            if isinstance(key, bytes) and isinstance(value, bytes):
                decoded = (
                    base64.b64encode(value).decode() if kind == "map:bytes" else value.decode()
                )
                out.setdefault(json_name, {})[key.decode()] = decoded
            continue
        repeated = kind.startswith("[]")
        value = _scalar(kind[2:] if repeated else kind, raw)
        if repeated:
            out.setdefault(json_name, []).append(value)
        elif not (_empty(value) and json_name != "replicas"):
            out[json_name] = value
    return out


def decode(data: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded object from kubectl; 415 for what is not supported."""
    if not data.startswith(MAGIC):
        raise _refuse("no k8s protobuf envelope")
    try:
        envelope = dict(_fields(data[len(MAGIC) :]))
        type_meta = envelope.get(1, b"")
        raw = envelope.get(2, b"")
        if not isinstance(type_meta, bytes) or not isinstance(raw, bytes):
            raise _refuse("malformed envelope")
        meta = dict(_fields(type_meta))
        api_version = meta.get(1, b"")
        kind = meta.get(2, b"")
        if not isinstance(api_version, bytes) or not isinstance(kind, bytes):
            raise _refuse("malformed type")
        kind_name = kind.decode()
        if kind_name not in KINDS:
            raise _refuse(f"kind {kind_name}")
        obj = _message(kind_name, raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise _refuse(str(error)) from error
    return {"apiVersion": api_version.decode(), "kind": kind_name, **obj}
