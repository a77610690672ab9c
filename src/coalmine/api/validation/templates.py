"""Rules of MetricTemplate and AlertProvider."""

from __future__ import annotations

from coalmine.api.models import AlertProvider, MetricTemplate
from coalmine.api.validation.problems import Problem, is_http_url, show

# --- MetricTemplate -------------------------------------------------------------------------------

_ADDRESS_NEEDED = ("influxdb", "graphite", "dynatrace", "splunk")


def validate_metric_template(template: MetricTemplate) -> list[Problem]:
    """Provider-specific needs of a MetricTemplate (Flagger fails at query time without them)."""
    problems: list[Problem] = []
    provider = template.spec.provider
    if not template.spec.query.strip():
        problems.append(Problem("spec.query", "must not be empty"))
    if provider.type == "cloudwatch" and not provider.region:
        problems.append(Problem("spec.provider.region", "required by the cloudwatch provider"))
    if provider.type == "http" and not provider.address:
        problems.append(Problem("spec.provider.address", "required by the http provider"))
    if provider.type in _ADDRESS_NEEDED and not provider.address:
        problems.append(
            Problem(
                "spec.provider.address",
                f"the {provider.type} provider needs an address; queries will fail without one",
                "warning",
            )
        )
    if provider.address and not is_http_url(provider.address):
        problems.append(
            Problem(
                "spec.provider.address",
                f"must be an absolute http or https URL, got {show(provider.address)}",
            )
        )
    if provider.headers and provider.type not in ("prometheus", "http"):
        problems.append(
            Problem(
                "spec.provider.headers",
                f"only used by the prometheus provider, not {provider.type}",
                "warning",
            )
        )
    return problems


# --- AlertProvider --------------------------------------------------------------------------------


def validate_alert_provider(provider: AlertProvider) -> list[Problem]:
    """Flagger's schema `oneOf`: exactly one of address and secretRef."""
    problems: list[Problem] = []
    spec = provider.spec
    if spec.address and spec.secret_ref is not None:
        problems.append(
            Problem(
                "spec",
                "address and secretRef are mutually exclusive (Flagger's schema refuses both); "
                "keep secretRef and put the address in the Secret's `address` key",
            )
        )
    elif not spec.address and spec.secret_ref is None:
        problems.append(Problem("spec", "one of address or secretRef is required"))
    if spec.address and not is_http_url(spec.address):
        problems.append(
            Problem(
                "spec.address",
                f"must be an absolute http or https URL, got {show(spec.address)}",
            )
        )
    return problems
