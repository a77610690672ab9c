"""The provider registry's lookup: imports every backend module (each registers its type with
`base.register` when imported) and builds a provider for a MetricTemplate's `spec.provider`.

The backends import `base` and never this module, so `base` needs no lazy imports and the backends
stay independent of each other (an import contract in pyproject.toml checks it).
"""

from __future__ import annotations

from coalmine.analysis.providers import (  # noqa: F401  (imported for their @register lines)
    cloudwatch,
    datadog,
    dynatrace,
    externalmetrics,
    graphite,
    http,
    influxdb,
    keptn,
    newrelic,
    prometheus,
    splunk,
    stackdriver,
)
from coalmine.analysis.providers.base import (
    Credentials,
    MetricProvider,
    ProviderConfigError,
    ProviderContext,
    registered_factories,
)
from coalmine.api.models import MetricTemplateProvider


def registered_types() -> tuple[str, ...]:
    return tuple(sorted(registered_factories()))


def provider_for(
    spec: MetricTemplateProvider,
    credentials: Credentials | None,
    context: ProviderContext,
    interval: str = "1m",
) -> MetricProvider:
    """A ready provider for a MetricTemplate's `spec.provider`, its Secret data and the metric
    interval (datadog, newrelic, cloudwatch, dynatrace and splunk query a window around it)."""
    factories = registered_factories()
    factory = factories.get(spec.type)
    if factory is None:
        raise ProviderConfigError(
            f"provider type {spec.type!r} is not supported (one of {', '.join(sorted(factories))})"
        )
    return factory(spec, credentials or {}, context, interval)
