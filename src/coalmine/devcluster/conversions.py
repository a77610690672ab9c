"""autoscaling/v1 HorizontalPodAutoscalers as a view of the autoscaling/v2 objects devcluster
stores, converted as kube-apiserver converts them for the common case: a CPU utilization target.

v1 has room for one metric (`targetCPUUtilizationPercentage`); a real server carries the other v2
metrics, conditions and behavior in `autoscaling.alpha.kubernetes.io/*` annotations of the v1
view, devcluster leaves them out of it (the v2 object keeps them).
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
V1 = "autoscaling/v1"
V2 = "autoscaling/v2"


def _cpu_target(metrics: Any) -> int | None:
    for metric in metrics or []:
        resource = metric.get("resource") if isinstance(metric, dict) else None
        if metric.get("type") == "Resource" and isinstance(resource, dict):
            target = resource.get("target") or {}
            if resource.get("name") == "cpu" and target.get("type") == "Utilization":
                value = target.get("averageUtilization")
                return value if isinstance(value, int) else None
    return None


def _cpu_current(metrics: Any) -> int | None:
    for metric in metrics or []:
        resource = metric.get("resource") if isinstance(metric, dict) else None
        if isinstance(resource, dict) and resource.get("name") == "cpu":
            value = (resource.get("current") or {}).get("averageUtilization")
            return value if isinstance(value, int) else None
    return None


def hpa_v1_to_v2(obj: Obj) -> Obj:
    out = {k: v for k, v in obj.items() if k not in ("spec", "status")}
    out["apiVersion"] = V2
    spec = dict(obj.get("spec") or {})
    target = spec.pop("targetCPUUtilizationPercentage", None)
    if target is not None:
        spec["metrics"] = [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": target},
                },
            }
        ]
    out["spec"] = spec
    if isinstance(obj.get("status"), dict):
        status = dict(obj["status"])
        current = status.pop("currentCPUUtilizationPercentage", None)
        if current is not None:
            status["currentMetrics"] = [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "current": {"averageUtilization": current}},
                }
            ]
        out["status"] = status
    return out


def hpa_v2_to_v1(obj: Obj) -> Obj:
    out = {k: v for k, v in obj.items() if k not in ("spec", "status")}
    out["apiVersion"] = V1
    spec = {k: v for k, v in (obj.get("spec") or {}).items() if k not in ("metrics", "behavior")}
    target = _cpu_target((obj.get("spec") or {}).get("metrics"))
    if target is not None:
        spec["targetCPUUtilizationPercentage"] = target
    out["spec"] = spec
    if "status" in obj:
        source = obj.get("status") or {}
        status = {
            k: v
            for k, v in source.items()
            if k in ("observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas")
        }
        status.setdefault("currentReplicas", 0)
        current = _cpu_current(source.get("currentMetrics"))
        if current is not None:
            status["currentCPUUtilizationPercentage"] = current
        out["status"] = status
    return out
