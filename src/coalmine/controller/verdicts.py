"""The controller's verdict on a Canary object, remembered while its inputs stay the same.

`routers.verdict.judge` is a pure function of the Canary object, the controller's options and
the target Service read from the cache. The controller judges on every Canary event and again in
every cycle; between a cycle's own status write (its event) and the next cycle nothing changes,
so the second judgement of the same object was a full parse thrown away (about a tenth of an
analysing cycle's CPU at 1,000 canaries). Cache entries are replaced, never edited in place, so
"the same" is identity: the same Canary dict and the same target Service dict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from coalmine.api.models import Canary
from coalmine.kube.api import Object
from coalmine.kube.cache import object_key
from coalmine.routers.verdict import Options, Verdict, judge

Obj = Mapping[str, Any]
ServiceLookup = Callable[[Canary], Obj | None]


@dataclass(frozen=True)
class _Judged:
    obj: Object
    service: Obj | None
    verdict: Verdict


class Judgements:
    """`judge()` per Canary, reused while the Canary and its target Service are the same objects."""

    def __init__(self, options: Options, service_of: ServiceLookup) -> None:
        self.options = options
        self._service_of = service_of
        self._last: dict[tuple[str, str], _Judged] = {}

    def __call__(self, obj: Object) -> Verdict:
        key = object_key(obj)
        last = self._last.get(key)
        if (
            last is not None
            and last.obj is obj
            and last.verdict.canary is not None
            and self._service_of(last.verdict.canary) is last.service
        ):
            return last.verdict
        looked_up: list[Obj | None] = []

        def service(canary: Canary) -> Obj | None:
            found = self._service_of(canary)
            looked_up.append(found)
            return found

        verdict = judge(obj, self.options, service)
        if verdict.canary is None:
            self._last.pop(key, None)
        else:
            self._last[key] = _Judged(obj, looked_up[-1] if looked_up else None, verdict)
        return verdict

    def forget(self, obj: Object) -> None:
        self._last.pop(object_key(obj), None)
