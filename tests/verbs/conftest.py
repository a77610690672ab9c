"""Fixtures of tests/verbs (defined in `rig`)."""

from __future__ import annotations

from .rig import api, controller, hooks, ns, output, user_kubeconfig

__all__ = ["api", "controller", "hooks", "ns", "output", "user_kubeconfig"]
