"""Metric backends: one module per MetricTemplate `spec.provider.type`, registered by name."""

from coalmine.analysis.providers.base import (
    BackendLimiter,
    MetricProvider,
    NoValuesFound,
    ProviderConfigError,
    ProviderContext,
    ProviderError,
)
from coalmine.analysis.providers.registry import provider_for, registered_types

__all__ = [
    "BackendLimiter",
    "MetricProvider",
    "NoValuesFound",
    "ProviderConfigError",
    "ProviderContext",
    "ProviderError",
    "provider_for",
    "registered_types",
]
