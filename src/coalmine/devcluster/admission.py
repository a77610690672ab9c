"""Per-kind defaulting and validation of built-in kinds, as kube-apiserver's registry strategies
(`PrepareForCreate`, defaulting, `Validate`, `ValidateUpdate`) do them, with their field paths and
reasons. `ADMIT[(group, kind)]` is called with the object to store and the stored one (None on
create); it returns the object to store or raises the 422 `invalid` error.

Coverage (measured by `bench/fidelity.py`): the rules a client of coalmine's kinds meets —
workload selectors (required, non-empty, immutable, matching the template), replicas, containers'
name and image, Deployment strategies; pod template defaults (also volume modes); ConfigMap and
Secret keys, Secret `stringData`, `type` and TLS keys, immutability; HPA defaults and bounds;
Lease durations; RBAC `roleRef` and rules; EndpointSlice address types; Event types. Not every
field of every kind is validated (probes, resources, affinity, ... are stored as given).

Which kinds keep `metadata.generation` (`GENERATION`) and what moves it (`generation_changed`)
follow the real strategies too: a Deployment's generation moves with its spec or annotations,
other kinds' with everything but metadata and status; ConfigMaps, Services, Namespaces, HPAs,
Leases, Events and RBAC objects have none.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Any

from coalmine.devcluster.errors import Cause, bad_request, invalid

Obj = dict[str, Any]
Admit = Callable[[Obj, Obj | None], Obj]

APPS = "apps"
RBAC = "rbac.authorization.k8s.io"
CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
CONFIG_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

# Kinds whose objects carry metadata.generation (built-in ones; custom resources always do).
GENERATION = {
    (APPS, "Deployment"),
    (APPS, "DaemonSet"),
    (APPS, "ReplicaSet"),
    (APPS, "StatefulSet"),
    ("", "Pod"),
    ("networking.k8s.io", "Ingress"),
    ("discovery.k8s.io", "EndpointSlice"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
}

# The status a new object gets (Go structs that are not pointers are never omitted).
INITIAL_STATUS: dict[tuple[str, str], Obj] = {
    (APPS, "Deployment"): {},
    (APPS, "DaemonSet"): {
        "currentNumberScheduled": 0,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": 0,
        "numberReady": 0,
    },
    (APPS, "ReplicaSet"): {"replicas": 0},
    ("autoscaling", "HorizontalPodAutoscaler"): {"currentMetrics": None, "desiredReplicas": 0},
    ("networking.k8s.io", "Ingress"): {"loadBalancer": {}},
}


# The top-level fields of built-in kinds besides apiVersion, kind and metadata: a real server
# decodes into Go structs, so anything else is dropped (or refused under fieldValidation=Strict).
_SPEC_STATUS = ("spec", "status")
_CORE_EVENT = (
    "involvedObject",
    "reason",
    "message",
    "source",
    "firstTimestamp",
    "lastTimestamp",
    "count",
    "type",
    "eventTime",
    "series",
    "action",
    "related",
    "reportingComponent",
    "reportingInstance",
)
_EVENTS_V1 = (
    "eventTime",
    "series",
    "reportingController",
    "reportingInstance",
    "action",
    "reason",
    "regarding",
    "related",
    "note",
    "type",
    "deprecatedSource",
    "deprecatedFirstTimestamp",
    "deprecatedLastTimestamp",
    "deprecatedCount",
)
TOP_LEVEL_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "ConfigMap"): ("data", "binaryData", "immutable"),
    ("", "Secret"): ("data", "stringData", "type", "immutable"),
    ("", "ServiceAccount"): ("secrets", "imagePullSecrets", "automountServiceAccountToken"),
    ("", "Endpoints"): ("subsets",),
    ("", "Event"): _CORE_EVENT,
    ("events.k8s.io", "Event"): _EVENTS_V1,
    (APPS, "ControllerRevision"): ("data", "revision"),
    (RBAC, "Role"): ("rules",),
    (RBAC, "ClusterRole"): ("rules", "aggregationRule"),
    (RBAC, "RoleBinding"): ("subjects", "roleRef"),
    (RBAC, "ClusterRoleBinding"): ("subjects", "roleRef"),
    ("discovery.k8s.io", "EndpointSlice"): ("addressType", "endpoints", "ports"),
}


def unknown_top_level_fields(group: str, kind: str, obj: Obj) -> list[str]:
    """Top-level fields a built-in kind does not have."""
    known = ("apiVersion", "kind", "metadata", *TOP_LEVEL_FIELDS.get((group, kind), _SPEC_STATUS))
    return [key for key in obj if key not in known]


def has_generation(group: str, kind: str, builtin: bool) -> bool:
    return not builtin or (group, kind) in GENERATION


def generation_changed(
    group: str, kind: str, old: Obj, new: Obj, status_subresource: bool = True
) -> bool:
    """Whether an update moves `metadata.generation` (the strategies' `PrepareForUpdate`); a
    custom resource without a status subresource moves it with its status too."""
    if (group, kind) == (APPS, "Deployment"):
        old_annotations = old.get("metadata", {}).get("annotations") or {}
        new_annotations = new.get("metadata", {}).get("annotations") or {}
        if old_annotations != new_annotations:
            return True
    skip = ("metadata", "status") if status_subresource else ("metadata",)
    return {k: v for k, v in old.items() if k not in skip} != {
        k: v for k, v in new.items() if k not in skip
    }


def _name(obj: Obj) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


# --- pod templates -------------------------------------------------------------------------------
def default_pod_spec(spec: Obj) -> None:
    """The defaults kube-apiserver writes into every pod spec (and pod template)."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            image = str(container.get("image", ""))
            tag = image.rsplit("/", 1)[-1].partition("@")[0]
            latest = ":" not in tag or tag.endswith(":latest")
            container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            container.setdefault("resources", {})
            for port in container.get("ports") or []:
                port.setdefault("protocol", "TCP")
    for volume in spec.get("volumes") or []:
        for source in ("configMap", "secret", "projected", "downwardAPI"):
            if isinstance(volume.get(source), dict):
                volume[source].setdefault("defaultMode", 420)


def _pod_spec_causes(spec: Any, path: str) -> list[Cause]:
    if not isinstance(spec, dict):
        return [Cause.required(path)]
    containers = spec.get("containers")
    if not containers:
        return [Cause.required(f"{path}.containers")]
    causes: list[Cause] = []
    names: set[str] = set()
    for index, container in enumerate(containers):
        where = f"{path}.containers[{index}]"
        name = container.get("name") or ""
        if not name:
            causes.append(Cause.required(f"{where}.name"))
        elif not DNS1123_LABEL.match(name) or len(name) > 63:
            causes.append(Cause.invalid(f"{where}.name", name, "must be a DNS-1123 label"))
        elif name in names:
            causes.append(Cause.duplicate(f"{where}.name", name))
        names.add(name)
        if not container.get("image"):
            causes.append(Cause.required(f"{where}.image"))
    return causes


# --- workloads -----------------------------------------------------------------------------------
def _selector_causes(spec: Obj, template_labels: Obj, kind: str) -> list[Cause]:
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        causes = [Cause.required("spec.selector")]
        if template_labels:
            causes.append(
                Cause.invalid(
                    "spec.template.metadata.labels",
                    template_labels,
                    "`selector` does not match template `labels`",
                )
            )
        return causes
    match = selector.get("matchLabels") or {}
    if not match and not selector.get("matchExpressions"):
        return [
            Cause.invalid(
                "spec.selector", selector, f"empty selector is invalid for {kind.lower()}"
            )
        ]
    if any(template_labels.get(k) != v for k, v in match.items()):
        return [
            Cause.invalid(
                "spec.template.metadata.labels",
                template_labels,
                "`selector` does not match template `labels`",
            )
        ]
    return []


def _strategy_causes(strategy: Any) -> list[Cause]:
    if not isinstance(strategy, dict):
        return []
    if strategy.get("type") == "Recreate" and strategy.get("rollingUpdate") is not None:
        return [
            Cause.forbidden(
                "spec.strategy.rollingUpdate",
                "may not be specified when strategy `type` is 'Recreate'",
            )
        ]
    rolling = strategy.get("rollingUpdate")
    if (
        isinstance(rolling, dict)
        and rolling.get("maxSurge") in (0, "0%")
        and rolling.get("maxUnavailable") in (0, "0%")
    ):
        return [
            Cause.invalid(
                "spec.strategy.rollingUpdate.maxUnavailable",
                rolling.get("maxUnavailable"),
                "may not be 0 when `maxSurge` is 0",
            )
        ]
    return []


def _admit_workload(kind: str) -> Admit:
    def admit(obj: Obj, old: Obj | None) -> Obj:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            spec = obj["spec"] = {}
        raw_template = spec.get("template")
        template: Obj = raw_template if isinstance(raw_template, dict) else {}
        template_labels = (template.get("metadata") or {}).get("labels") or {}
        if kind != "DaemonSet":
            spec.setdefault("replicas", 1)
        if kind != "ReplicaSet":
            spec.setdefault("revisionHistoryLimit", 10)
        if kind == "DaemonSet":
            spec.setdefault(
                "updateStrategy",
                {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
            )
        if kind == "StatefulSet":
            spec.setdefault("podManagementPolicy", "OrderedReady")
            spec.setdefault(
                "updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
            )
            spec.setdefault(
                "persistentVolumeClaimRetentionPolicy",
                {"whenDeleted": "Retain", "whenScaled": "Retain"},
            )
        if kind == "Deployment":
            spec.setdefault("progressDeadlineSeconds", 600)
            spec.setdefault(
                "strategy",
                {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                },
            )
        if isinstance(template.get("spec"), dict):
            default_pod_spec(template["spec"])
        causes = _selector_causes(spec, template_labels, kind)
        replicas = spec.get("replicas")
        if isinstance(replicas, int) and replicas < 0:
            causes.append(
                Cause.invalid("spec.replicas", replicas, "must be greater than or equal to 0")
            )
        if kind == "Deployment":
            causes.extend(_strategy_causes(spec.get("strategy")))
        causes.extend(_pod_spec_causes(template.get("spec"), "spec.template.spec"))
        if old is not None and "selector" in spec:
            old_selector = old.get("spec", {}).get("selector")
            if old_selector is not None and spec.get("selector") != old_selector:
                causes.append(
                    Cause.invalid("spec.selector", spec.get("selector"), "field is immutable")
                )
        if causes:
            raise invalid(kind, APPS, _name(obj), causes)
        return obj

    return admit


def _admit_pod(obj: Obj, old: Obj | None) -> Obj:
    if isinstance(obj.get("spec"), dict):
        default_pod_spec(obj["spec"])
    if old is None:
        obj.setdefault("status", {"phase": "Pending", "qosClass": "BestEffort"})
    return obj


def _admit_namespace(obj: Obj, old: Obj | None) -> Obj:
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    labels = obj["metadata"].setdefault("labels", {})
    labels["kubernetes.io/metadata.name"] = _name(obj)
    if old is None:
        obj["status"] = {"phase": "Active"}
    return obj


# --- ConfigMaps and Secrets ------------------------------------------------------------------------
def _key_causes(obj: Obj, fields: tuple[str, ...]) -> list[Cause]:
    causes: list[Cause] = []
    seen: set[str] = set()
    for field in fields:
        for key in obj.get(field) or {}:
            if not CONFIG_KEY.match(key) or len(key) > 253:
                causes.append(Cause.invalid(f"{field}[{key}]", key, CONFIG_KEY_MSG))
            elif key in seen:
                causes.append(
                    Cause.invalid(f"{field}[{key}]", key, "duplicate of key present in data")
                )
            seen.add(key)
    return causes


def _immutable_causes(obj: Obj, old: Obj | None, fields: tuple[str, ...]) -> list[Cause]:
    if old is None or not old.get("immutable"):
        return []
    causes = [
        Cause.forbidden(field, "field is immutable when `immutable` is set")
        for field in fields
        if (obj.get(field) or {}) != (old.get(field) or {})
    ]
    if not obj.get("immutable"):
        causes.append(Cause.forbidden("immutable", "field is immutable when `immutable` is set"))
    return causes


def _drop_empty(obj: Obj, fields: tuple[str, ...]) -> None:
    for field in fields:
        if field in obj and not obj[field]:
            del obj[field]  # Go's omitempty


def _admit_configmap(obj: Obj, old: Obj | None) -> Obj:
    _drop_empty(obj, ("data", "binaryData"))
    causes = _key_causes(obj, ("data", "binaryData"))
    causes.extend(_immutable_causes(obj, old, ("data", "binaryData")))
    if causes:
        raise invalid("ConfigMap", "", _name(obj), causes)
    return obj


TLS_KEYS = {"kubernetes.io/tls": ("tls.crt", "tls.key")}


def _admit_secret(obj: Obj, old: Obj | None) -> Obj:
    data = obj.get("data") or {}
    for key, value in data.items():
        try:
            base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError) as error:
            raise bad_request(
                f'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at '
                f"input byte 0 ({key})"
            ) from error
    string_data = obj.pop("stringData", None) or {}
    for key, value in string_data.items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    obj["data"] = data
    _drop_empty(obj, ("data",))
    obj.setdefault("type", "Opaque")
    causes = _key_causes(obj, ("data",))
    for required in TLS_KEYS.get(obj["type"], ()):
        if required not in data:
            causes.append(Cause.required(f"data[{required}]"))
    if old is not None and old.get("type", "Opaque") != obj["type"]:
        causes.append(Cause.invalid("type", obj["type"], "field is immutable"))
    causes.extend(_immutable_causes(obj, old, ("data",)))
    if causes:
        raise invalid("Secret", "", _name(obj), causes)
    return obj


# --- autoscaling, coordination, events ----------------------------------------------------------
def _hpa_behavior(behavior: Obj) -> None:
    up = behavior.setdefault("scaleUp", {})
    up.setdefault("stabilizationWindowSeconds", 0)
    up.setdefault("selectPolicy", "Max")
    up.setdefault(
        "policies",
        [
            {"type": "Pods", "value": 4, "periodSeconds": 15},
            {"type": "Percent", "value": 100, "periodSeconds": 15},
        ],
    )
    down = behavior.setdefault("scaleDown", {})
    down.setdefault("selectPolicy", "Max")
    down.setdefault("policies", [{"type": "Percent", "value": 100, "periodSeconds": 15}])


def _admit_hpa(obj: Obj, old: Obj | None) -> Obj:
    spec = obj.setdefault("spec", {})
    spec.setdefault("minReplicas", 1)
    if not spec.get("metrics"):
        spec["metrics"] = [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80},
                },
            }
        ]
    if isinstance(spec.get("behavior"), dict):
        _hpa_behavior(spec["behavior"])
    causes: list[Cause] = []
    minimum, maximum = spec.get("minReplicas"), spec.get("maxReplicas")
    if isinstance(minimum, int) and minimum < 1:
        causes.append(
            Cause.invalid("spec.minReplicas", minimum, "must be greater than or equal to 1")
        )
        if minimum == 0 and not any(
            m.get("type") in ("Object", "External") for m in spec["metrics"] if isinstance(m, dict)
        ):
            causes.append(
                Cause.forbidden(
                    "spec.metrics",
                    "must specify at least one Object or External metric to support scaling to "
                    "zero replicas",
                )
            )
    if not isinstance(maximum, int) or maximum < 1:
        causes.append(Cause.invalid("spec.maxReplicas", maximum, "must be greater than 0"))
    elif isinstance(minimum, int) and maximum < minimum:
        causes.append(
            Cause.invalid(
                "spec.maxReplicas", maximum, "must be greater than or equal to `minReplicas`"
            )
        )
    if causes:
        raise invalid("HorizontalPodAutoscaler", "autoscaling", _name(obj), causes)
    return obj


def _admit_lease(obj: Obj, old: Obj | None) -> Obj:
    spec = obj.setdefault("spec", {})
    causes = [
        Cause.invalid(f"spec.{field}", spec[field], "must be greater than 0")
        for field in ("leaseDurationSeconds",)
        if isinstance(spec.get(field), int) and spec[field] <= 0
    ]
    if isinstance(spec.get("leaseTransitions"), int) and spec["leaseTransitions"] < 0:
        causes.append(
            Cause.invalid(
                "spec.leaseTransitions",
                spec["leaseTransitions"],
                "must be greater than or equal to 0",
            )
        )
    if causes:
        raise invalid("Lease", "coordination.k8s.io", _name(obj), causes)
    return obj


def _admit_event(obj: Obj, old: Obj | None) -> Obj:
    """Events are stored in their core/v1 form; its non-omitempty fields are always present."""
    obj.setdefault("eventTime", None)
    obj.setdefault("reportingComponent", "")
    obj.setdefault("reportingInstance", "")
    obj.setdefault("source", {})
    obj.setdefault("firstTimestamp", None)
    obj.setdefault("lastTimestamp", None)
    obj.setdefault("involvedObject", {})
    causes: list[Cause] = []
    involved_ns = obj["involvedObject"].get("namespace")
    namespace = obj["metadata"].get("namespace")
    if involved_ns and namespace and involved_ns != namespace:
        causes.append(
            Cause.invalid("involvedObject.namespace", involved_ns, "does not match event.namespace")
        )
    if causes:
        raise invalid("Event", "", _name(obj), causes)
    return obj


# --- RBAC ---------------------------------------------------------------------------------------------
def _rules_causes(rules: Any) -> list[Cause]:
    causes: list[Cause] = []
    for index, rule in enumerate(rules or []):
        path = f"rules[{index}]"
        if not rule.get("verbs"):
            causes.append(Cause.required(f"{path}.verbs", "verbs must contain at least one value"))
        if rule.get("nonResourceURLs"):
            continue
        if not rule.get("resources"):
            causes.append(
                Cause.required(
                    f"{path}.resources", "resource rules must supply at least one resource"
                )
            )
        if rule.get("apiGroups") is None:
            causes.append(
                Cause.required(
                    f"{path}.apiGroups", "resource rules must supply at least one api group"
                )
            )
    return causes


def _admit_role(kind: str) -> Admit:
    def admit(obj: Obj, old: Obj | None) -> Obj:
        obj.setdefault("rules", None)
        causes = _rules_causes(obj.get("rules"))
        if causes:
            raise invalid(kind, RBAC, _name(obj), causes)
        return obj

    return admit


def _admit_binding(kind: str) -> Admit:
    def admit(obj: Obj, old: Obj | None) -> Obj:
        causes: list[Cause] = []
        ref = obj.get("roleRef") or {}
        allowed = ["ClusterRole"] if kind == "ClusterRoleBinding" else ["ClusterRole", "Role"]
        if ref.get("apiGroup") != RBAC:
            causes.append(Cause.not_supported("roleRef.apiGroup", ref.get("apiGroup", ""), [RBAC]))
        if ref.get("kind") not in allowed:
            causes.append(Cause.not_supported("roleRef.kind", ref.get("kind", ""), allowed))
        if not ref.get("name"):
            causes.append(Cause.required("roleRef.name"))
        for index, subject in enumerate(obj.get("subjects") or []):
            if subject.get("kind") == "ServiceAccount" and kind == "ClusterRoleBinding":
                if not subject.get("namespace"):
                    causes.append(Cause.required(f"subjects[{index}].namespace"))
            elif subject.get("kind") in ("User", "Group"):
                subject.setdefault("apiGroup", RBAC)
        if old is not None and old.get("roleRef") != obj.get("roleRef"):
            causes.append(Cause.invalid("roleRef", obj.get("roleRef"), "cannot change roleRef"))
        if causes:
            raise invalid(kind, RBAC, _name(obj), causes)
        return obj

    return admit


# --- EndpointSlices ------------------------------------------------------------------------------
ADDRESS_TYPES = ["FQDN", "IPv4", "IPv6"]


def _admit_endpoint_slice(obj: Obj, old: Obj | None) -> Obj:
    causes: list[Cause] = []
    address_type = obj.get("addressType")
    if not address_type:
        causes.append(Cause.required("addressType"))
    elif address_type not in ADDRESS_TYPES:
        causes.append(Cause.not_supported("addressType", address_type, ADDRESS_TYPES))
    if old is not None and old.get("addressType") != address_type:
        causes.append(Cause.invalid("addressType", address_type, "field is immutable"))
    obj.setdefault("endpoints", None)
    for port in obj.get("ports") or []:
        port.setdefault("protocol", "TCP")
    if causes:
        raise invalid("EndpointSlice", "discovery.k8s.io", _name(obj), causes)
    return obj


ADMIT: dict[tuple[str, str], Admit] = {
    (APPS, "Deployment"): _admit_workload("Deployment"),
    (APPS, "ReplicaSet"): _admit_workload("ReplicaSet"),
    (APPS, "DaemonSet"): _admit_workload("DaemonSet"),
    (APPS, "StatefulSet"): _admit_workload("StatefulSet"),
    ("", "Pod"): _admit_pod,
    ("", "Namespace"): _admit_namespace,
    ("", "ConfigMap"): _admit_configmap,
    ("", "Secret"): _admit_secret,
    ("", "Event"): _admit_event,
    ("events.k8s.io", "Event"): _admit_event,
    ("autoscaling", "HorizontalPodAutoscaler"): _admit_hpa,
    ("coordination.k8s.io", "Lease"): _admit_lease,
    (RBAC, "Role"): _admit_role("Role"),
    (RBAC, "ClusterRole"): _admit_role("ClusterRole"),
    (RBAC, "RoleBinding"): _admit_binding("RoleBinding"),
    (RBAC, "ClusterRoleBinding"): _admit_binding("ClusterRoleBinding"),
    ("discovery.k8s.io", "EndpointSlice"): _admit_endpoint_slice,
}
