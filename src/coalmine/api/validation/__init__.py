"""Reading Flagger manifests into models, with problems that name the field and the reason.

Everything a user can write wrong ends up as a `Problem` with a path such as
`spec.analysis.stepWeights[2]`, never as a pydantic message or an exception other than
`ManifestError`. Two severities:

* `error`: the object cannot work (Flagger's CRD schema or controller would refuse it, or the run
  would never progress); the controller does not run such a canary.
* `warning`: the object works but probably not as its author expects (a field that is ignored, a
  value that is capped). Flagger manifests that work under Flagger never get an error for a rule of
  ours alone.

`parse_*` raise `ManifestError` when there is an error; `inspect_object` returns every problem
(warnings included) without raising, for callers that report warnings too.

The modules: `problems` (the Problem type and how values are shown), `parsing` (documents into
models, v1alpha3 conversion), `pydantic_errors` (pydantic's errors as problems), `canary`,
`analysis` and `templates` (the rules of each kind).
"""

from coalmine.api.validation.canary import effective_provider, validate_canary
from coalmine.api.validation.parsing import (
    FLAGGER_KINDS,
    inspect_object,
    parse_alert_provider,
    parse_canary,
    parse_metric_template,
    parse_object,
)
from coalmine.api.validation.problems import (
    FlaggerObject,
    Inspection,
    ManifestError,
    Problem,
    ProblemSeverity,
    format_path,
    summarize_problems,
)
from coalmine.api.validation.pydantic_errors import translate_validation_error
from coalmine.api.validation.templates import validate_alert_provider, validate_metric_template

__all__ = [
    "FLAGGER_KINDS",
    "FlaggerObject",
    "Inspection",
    "ManifestError",
    "Problem",
    "ProblemSeverity",
    "effective_provider",
    "format_path",
    "inspect_object",
    "parse_alert_provider",
    "parse_canary",
    "parse_metric_template",
    "parse_object",
    "summarize_problems",
    "translate_validation_error",
    "validate_alert_provider",
    "validate_canary",
    "validate_metric_template",
]
