"""Realistic fixture objects for the target builders, modelled on Flagger's `podinfo` fixtures:
objects are plain dicts shaped like the API server returns them."""

from __future__ import annotations

from typing import Any

from coalmine.api.models import Canary, CanaryStatus
from coalmine.scheduler import status

NAMESPACE = "default"
CANARY_UID = "6f1a2b3c-0000-4000-8000-000000000001"


def podinfo_pod_spec(image: str = "ghcr.io/stefanprodan/podinfo:6.0.0") -> dict[str, Any]:
    return {
        "initContainers": [
            {
                "name": "init",
                "image": "busybox",
                "env": [
                    {
                        "name": "INIT_COLOR",
                        "valueFrom": {
                            "configMapKeyRef": {"name": "podinfo-config-init-env", "key": "color"}
                        },
                    }
                ],
            }
        ],
        "containers": [
            {
                "name": "podinfo",
                "image": image,
                "ports": [
                    {"name": "http", "containerPort": 9898, "protocol": "TCP"},
                    {"name": "http-metrics", "containerPort": 8080, "protocol": "TCP"},
                    {"containerPort": 8888, "protocol": "TCP"},
                ],
                "env": [
                    {
                        "name": "PODINFO_UI_COLOR",
                        "valueFrom": {
                            "configMapKeyRef": {"name": "podinfo-config-env", "key": "color"}
                        },
                    },
                    {
                        "name": "API_KEY",
                        "valueFrom": {
                            "secretKeyRef": {"name": "podinfo-secret-env", "key": "apiKey"}
                        },
                    },
                    {"name": "PLAIN", "value": "x"},
                ],
                "envFrom": [
                    {"configMapRef": {"name": "podinfo-config-all-env"}},
                    {"secretRef": {"name": "podinfo-secret-all-env"}},
                ],
                "volumeMounts": [{"name": "config", "mountPath": "/etc/podinfo/config"}],
            }
        ],
        "volumes": [
            {"name": "config", "configMap": {"name": "podinfo-config-vol"}},
            {"name": "secret", "secret": {"secretName": "podinfo-secret-vol"}},
            {
                "name": "projected",
                "projected": {
                    "sources": [
                        {"configMap": {"name": "podinfo-config-projected"}},
                        {"secret": {"name": "podinfo-secret-projected"}},
                    ]
                },
            },
        ],
    }


def podinfo_deployment(**overrides: Any) -> dict[str, Any]:
    deployment: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "podinfo",
            "namespace": NAMESPACE,
            "uid": "target-uid",
            "resourceVersion": "100",
            "generation": 1,
            "labels": {"app": "podinfo", "app.kubernetes.io/test-label-1": "test-label-value-1"},
            "annotations": {
                "kustomize.toolkit.fluxcd.io/checksum": "0a40893bfdc545d62125bd3e74eeb2ebaa7097c2",
                "app.kubernetes.io/test-annotation-1": "test-annotation-value-1",
            },
        },
        "spec": {
            "replicas": 2,
            "progressDeadlineSeconds": 60,
            "minReadySeconds": 5,
            "revisionHistoryLimit": 3,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}},
            "selector": {"matchLabels": {"app": "podinfo"}},
            "template": {
                "metadata": {
                    "labels": {"app": "podinfo", "kustomize.toolkit.fluxcd.io/name": "apps"},
                    "annotations": {"prometheus.io/scrape": "true"},
                },
                "spec": podinfo_pod_spec(),
            },
        },
        "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2},
    }
    deployment.update(overrides)
    return deployment


def podinfo_daemonset() -> dict[str, Any]:
    deployment = podinfo_deployment()
    spec = deployment["spec"]
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": deployment["metadata"],
        "spec": {
            "minReadySeconds": 5,
            "revisionHistoryLimit": 3,
            "updateStrategy": {"type": "RollingUpdate"},
            "selector": spec["selector"],
            "template": spec["template"],
        },
    }


def configmap(name: str, data: dict[str, str], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NAMESPACE, **meta},
        "data": data,
    }


def secret(name: str, data: dict[str, str], type_: str = "Opaque", **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": type_,
        "metadata": {"name": name, "namespace": NAMESPACE, **meta},
        "data": data,
    }


def podinfo_configmaps() -> dict[str, dict[str, Any]]:
    names = [
        "podinfo-config-env",
        "podinfo-config-all-env",
        "podinfo-config-vol",
        "podinfo-config-projected",
        "podinfo-config-init-env",
    ]
    return {
        n: configmap(n, {"color": "red"}, labels={"app.kubernetes.io/part-of": "podinfo"})
        for n in names
    }


def podinfo_secrets() -> dict[str, dict[str, Any]]:
    names = [
        "podinfo-secret-env",
        "podinfo-secret-all-env",
        "podinfo-secret-vol",
        "podinfo-secret-projected",
    ]
    return {n: secret(n, {"apiKey": "c2VjcmV0"}) for n in names}


def make_canary(spec_overrides: dict[str, Any] | None = None, kind: str = "Deployment") -> Canary:
    spec: dict[str, Any] = {
        "targetRef": {"apiVersion": "apps/v1", "kind": kind, "name": "podinfo"},
        "autoscalerRef": {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "name": "podinfo",
        },
        "progressDeadlineSeconds": 60,
        "service": {"port": 9898},
        "analysis": {"interval": "1m", "threshold": 10, "stepWeight": 10, "maxWeight": 50},
    }
    spec.update(spec_overrides or {})
    return Canary.model_validate(
        {
            "metadata": {"name": "podinfo", "namespace": NAMESPACE, "uid": CANARY_UID},
            "spec": {k: v for k, v in spec.items() if v is not None},
        }
    )


def has_spec_changed(current: str, last_applied: str | None, last_promoted: str | None) -> bool:
    """The scheduler's change detection, fed the two status hashes the targets tests care about."""
    return status.has_spec_changed(
        CanaryStatus(last_applied_spec=last_applied, last_promoted_spec=last_promoted), current
    )
