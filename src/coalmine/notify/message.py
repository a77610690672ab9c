"""The alert a notifier sends, built from a canary by pure functions (Flagger's `alert()`)."""

from __future__ import annotations

from dataclasses import dataclass

from coalmine.api.models import AlertSeverity, Canary

_LEVELS: dict[str, int] = {"info": 0, "warn": 1, "error": 2}


@dataclass(frozen=True)
class Field:
    name: str
    value: str


@dataclass(frozen=True)
class AlertMessage:
    """Notifier input: `<workload>.<namespace>` is the subject every chat format shows."""

    workload: str
    namespace: str
    message: str
    severity: AlertSeverity = "info"
    fields: tuple[Field, ...] = ()

    @property
    def subject(self) -> str:
        return f"{self.workload}.{self.namespace}"


def effective_severity(severity: str | None) -> AlertSeverity:
    """An alert or provider entry without severity means `info` (see docs/decisions.md, 'Alert
    severity default')."""
    if severity == "warn":
        return "warn"
    if severity == "error":
        return "error"
    return "info"


def provider_receives(provider_severity: str | None, alert_severity: str | None) -> bool:
    """A provider entry with severity X receives alerts of X and above (info < warn < error)."""
    provider_level = _LEVELS[effective_severity(provider_severity)]
    return _LEVELS[effective_severity(alert_severity)] >= provider_level


def traffic_routing(canary: Canary) -> str | None:
    """Flagger's one-line summary of the strategy, in its order of precedence."""
    analysis = canary.spec.analysis
    if analysis is None:
        return None
    if analysis.step_weight and analysis.step_weight > 0:
        return f"Weight step: {analysis.step_weight} max: {analysis.max_weight or 0}"
    if analysis.step_weights:
        steps = ",".join(str(step) for step in analysis.step_weights)
        return f"Weight steps: {steps} max: {analysis.max_weight or 0}"
    if analysis.match:
        return "A/B Testing"
    if analysis.iterations and analysis.iterations > 0:
        return "Blue/Green"
    return None


def canary_fields(canary: Canary) -> tuple[Field, ...]:
    """The fields of the two "metadata" alerts (initialization done, new revision)."""
    target = canary.spec.target_ref
    threshold = canary.spec.analysis.effective_threshold if canary.spec.analysis else 1
    fields = [
        Field("Target", f"{target.kind}/{target.name}.{canary.namespace}"),
        Field("Failed checks threshold", str(threshold)),
        Field("Progress deadline", f"{canary.spec.effective_progress_deadline_seconds}s"),
    ]
    routing = traffic_routing(canary)
    if routing is not None:
        fields.append(Field("Traffic routing", routing))
    return tuple(fields)


def build_alert_message(
    canary: Canary,
    message: str,
    severity: str | None = "info",
    *,
    metadata: bool = False,
    cluster_name: str = "",
) -> AlertMessage:
    """Notifier input for an alert about `canary`: `Cluster` first (when named), then metadata."""
    fields: list[Field] = []
    if cluster_name:
        fields.append(Field("Cluster", cluster_name))
    if metadata:
        fields.extend(canary_fields(canary))
    return AlertMessage(
        workload=canary.name,
        namespace=canary.namespace,
        message=message,
        severity=effective_severity(severity),
        fields=tuple(fields),
    )
