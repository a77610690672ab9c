"""Fixtures of the target builder tests (objects in targets_fixtures.py)."""

from __future__ import annotations

from typing import Any

import pytest

from coalmine.api.models import Canary

from .targets_fixtures import make_canary, podinfo_deployment


@pytest.fixture
def canary() -> Canary:
    return make_canary()


@pytest.fixture
def deployment() -> dict[str, Any]:
    return podinfo_deployment()
