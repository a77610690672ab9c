"""Event and condition texts that depend on the target kind.

Deployment and DaemonSet targets keep Flagger's exact texts (dashboards and alert rules match
them). A Service target has nothing to scale: its texts say what happens to traffic instead.
docs/state-machine.md lists both.
"""

from __future__ import annotations

SERVICE = "Service"


def run_started(kind: str, target_key: str) -> str:
    if kind == SERVICE:
        return f"New revision detected! Progressing canary analysis for {target_key}"
    return f"New revision detected! Scaling up {target_key}"


def promotion_completed(kind: str, target_key: str, primary_key: str) -> str:
    if kind == SERVICE:
        return f"Promotion completed! {primary_key} now serves the revision of {target_key}"
    return f"Promotion completed! Scaling down {target_key}"


def canary_failed(kind: str, canary_key: str, primary_key: str) -> str:
    if kind == SERVICE:
        return f"Canary failed! Routing all traffic of {canary_key} back to {primary_key}"
    return f"Canary failed! Scaling down {canary_key}"


def failed_condition(kind: str) -> str:
    if kind == SERVICE:
        return "Canary analysis failed, all traffic routed back to the primary copy."
    return f"Canary analysis failed, {kind} scaled to zero."


REVERTED = "target matches the promoted revision; nothing to release"
