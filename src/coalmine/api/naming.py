"""Every name coalmine writes into a cluster, in one place.

Generated object names, labels, annotations and the finalizer are part of the Kubernetes-visible
contract shared with Flagger: users' dashboards, policies and GitOps tools match on them.
"""

from __future__ import annotations

from typing import Final

GROUP: Final = "flagger.app"
VERSION: Final = "v1beta1"
LEGACY_VERSION: Final = "v1alpha3"
API_VERSION: Final = f"{GROUP}/{VERSION}"

CANARY_KIND: Final = "Canary"
METRIC_TEMPLATE_KIND: Final = "MetricTemplate"
ALERT_PROVIDER_KIND: Final = "AlertProvider"

PRIMARY_SUFFIX: Final = "-primary"
CANARY_SUFFIX: Final = "-canary"
# coalmine: the fresh baseline of a run (`spec.analysis.baseline`): `<target>-baseline` Deployment
# with the selector label `<value>-baseline`, `<apex>-baseline` Service.
BASELINE_SUFFIX: Final = "-baseline"

FINALIZER: Final = "finalizer.flagger.app"
EVENT_REASON: Final = "Synced"
EVENT_SOURCE: Final = "flagger"

# Selector label discovery order of `--selector-labels`.
DEFAULT_SELECTOR_LABELS: Final = ("app", "name", "app.kubernetes.io/name")

SCALE_TO_ZERO_NODE_SELECTOR: Final = "flagger.app/scale-to-zero"
CONFIG_TRACKING_ANNOTATION: Final = "flagger.app/config-tracking"
PRIMARY_REVISION_ANNOTATION: Final = "flagger.app/primary-revision"
POD_TEMPLATE_ID_ANNOTATION: Final = "flagger-id"
ORIGINAL_CONFIGURATION_ANNOTATION: Final = "flagger.kubernetes.io/original-configuration"
KUBECTL_LAST_APPLIED_ANNOTATION: Final = "kubectl.kubernetes.io/last-applied-configuration"
TOOLKIT_MARKER: Final = "toolkit.fluxcd.io"
# Added to routing objects and generated Services so Flux does not fight the operator.
TOOLKIT_DISABLE_ANNOTATIONS: Final = {
    "kustomize.toolkit.fluxcd.io/reconcile": "disabled",
    "helm.toolkit.fluxcd.io/driftDetection": "disabled",
}
KEDA_PAUSED_REPLICAS_ANNOTATION: Final = "autoscaling.keda.sh/paused-replicas"
KUMA_MESH_ANNOTATION: Final = "kuma.io/mesh"


def primary_name(name: str) -> str:
    return f"{name}{PRIMARY_SUFFIX}"


def canary_name(name: str) -> str:
    return f"{name}{CANARY_SUFFIX}"


def primary_label_value(value: str) -> str:
    return f"{value}{PRIMARY_SUFFIX}"


def baseline_name(name: str) -> str:
    return f"{name}{BASELINE_SUFFIX}"


def baseline_label_value(value: str) -> str:
    return f"{value}{BASELINE_SUFFIX}"


def is_toolkit_key(key: str) -> bool:
    """Flux's bookkeeping keys are never copied onto generated objects."""
    return TOOLKIT_MARKER in key


# The release (`coalmine.api.hashing.release_checksum`) a primary was last promoted to, written
# on the primary in the promotion's own write so a crash before the status write is recognised.
PROMOTED_REVISION_ANNOTATION: Final = "coalmine.dev/promoted-revision"

# Knative Service targets: the revision that serves as the primary, as Flagger records it on the
# Knative Service (its controller and router read it; coalmine's too, so a canary moves across).
KNATIVE_PRIMARY_REVISION_ANNOTATION: Final = "flagger.app/primary-revision"

# Release verbs (`coalmine promote|abort|retry|pause|resume`): requests are annotations on the
# Canary, which GitOps tools leave alone (they own the spec), never spec fields. The CLI writes the
# action and a fresh id; the controller acts once per id and writes the id back as handled.
ACTION_ANNOTATION: Final = "coalmine.dev/action"
ACTION_ID_ANNOTATION: Final = "coalmine.dev/action-id"
PAUSED_ANNOTATION: Final = "coalmine.dev/paused"
HANDLED_ACTION_ANNOTATION: Final = "coalmine.dev/handled-action"
ACTION_RESULT_ANNOTATION: Final = "coalmine.dev/action-result"
