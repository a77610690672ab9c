"""MetricTemplate query rendering with Flagger's model and Go's text/template.

Flagger renders queries with Go templates (`missingkey=error`, no dot data) and the functions
`name`, `namespace`, `target`, `service`, `ingress`, `route`, `interval` and `variables`; the
engine (`coalmine.analysis.gotemplate`) implements Go's whole text/template language, so every
query Flagger renders renders here to the same text. A template that Go refuses is a
`TemplateError` naming the template, line and column, never a crash.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from coalmine.analysis import gotemplate
from coalmine.analysis.gotemplate import TemplateError, go_sprintf
from coalmine.api.models import Canary

__all__ = ["TemplateError", "TemplateModel", "go_sprintf", "render", "render_query"]


@dataclass(frozen=True)
class TemplateModel:
    """Flagger's MetricTemplateModel: what a query may refer to."""

    name: str
    namespace: str
    target: str
    service: str
    ingress: str
    route: str
    interval: str
    variables: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def for_canary(
        cls,
        canary: Canary,
        interval: str,
        variables: Mapping[str, str] | None = None,
        *,
        route: str | None = None,
    ) -> TemplateModel:
        """The model Flagger builds for a canary; `route` is the Knative latest created revision
        (the caller reads it from the Knative Service status) and otherwise `routeRef` or target."""
        spec = canary.spec
        target = spec.target_ref.name
        return cls(
            name=canary.name,
            namespace=canary.namespace,
            target=target,
            service=spec.apex_name,
            ingress=spec.ingress_ref.name if spec.ingress_ref else target,
            route=route or (spec.route_ref.name if spec.route_ref else target),
            interval=interval,
            variables=dict(variables or {}),
        )

    def functions(self) -> dict[str, Callable[..., Any]]:
        def constant(value: Any) -> Callable[[], Any]:
            return lambda: value

        return {
            "name": constant(self.name),
            "namespace": constant(self.namespace),
            "target": constant(self.target),
            "service": constant(self.service),
            "ingress": constant(self.ingress),
            "route": constant(self.route),
            "interval": constant(self.interval),
            "variables": constant(dict(self.variables)),
        }


def render(template: str, functions: Mapping[str, Callable[..., Any]], name: str = "query") -> str:
    """Render a Go-template string with the given functions (no dot data, missing keys fail)."""
    return gotemplate.render(template, functions, name)


def render_query(template: str, model: TemplateModel, name: str = "query") -> str:
    """A MetricTemplate or builtin query rendered for a canary."""
    return render(template, model.functions(), name)
