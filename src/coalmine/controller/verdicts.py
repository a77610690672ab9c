"""The controller's verdict on a Canary object, remembered while its inputs stay the same.

`routers.verdict.judge` is a pure function of the Canary object, the controller's options and
the target Service read from the cache. The controller judges on every Canary event and again in
every cycle; between a cycle's own status write (its event) and the next cycle nothing changes,
so the second judgement of the same object was a full parse thrown away (about a tenth of an
analysing cycle's CPU at 1,000 canaries). Cache entries are replaced, never edited in place, so
"the same" is identity: the same Canary dict and the same target Service dict.

The controller's own status write makes a new object whose spec and metadata are the judged
one's (the status subresource cannot change them): `carry` hands the verdict over to it with the
canary the writer already built, instead of parsing the whole Canary again when the write comes
back as a cache event (another tenth). The watch often brings the write before its own answer
does, as a second copy of the same stored state (uid and resourceVersion): that copy is the same
object here, and the controller's Canary event for it decides nothing (`only_status_changed`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from coalmine.api.models import Canary
from coalmine.kube.api import Object
from coalmine.kube.cache import object_key
from coalmine.kube.writes import version
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
        last = self._current(key, obj)
        if last is not None and (last.obj is obj or _same_version(last.obj, obj)):
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

    def only_status_changed(self, obj: Object) -> bool:
        """True when the verdict on `obj` is the last one but for the status: a status write
        (ours, coming back through the watch) changes nothing the controller decides on."""
        last = self._current(object_key(obj), obj)
        return last is not None and _same_but_status(last.obj, obj)

    def carry(self, written: Object, canary: Canary) -> None:
        """`written` is our status write and `canary` its parsed form: the last verdict holds for
        it when nothing but the status and the version differ from the object judged."""
        key = object_key(written)
        last = self._current(key, written)
        if last is not None and _same_but_status(last.obj, written):
            self._last[key] = _Judged(written, last.service, replace(last.verdict, canary=canary))

    def _current(self, key: tuple[str, str], obj: Object) -> _Judged | None:
        """The last judgement of `key`, if it judged a usable canary against the target Service
        the cache holds now."""
        last = self._last.get(key)
        if (
            last is None
            or last.verdict.canary is None
            or self._service_of(last.verdict.canary) is not last.service
        ):
            return None
        return last

    def forget(self, obj: Object) -> None:
        self._last.pop(object_key(obj), None)


_VOLATILE_METADATA = frozenset({"resourceVersion", "managedFields"})


def _same_version(one: Obj, other: Obj) -> bool:
    """The same stored state: uid and resourceVersion equal (the watch's copy of our write)."""
    stored = version(one)
    return stored is not None and stored == version(other)


def _same_but_status(before: Obj, after: Obj) -> bool:
    """Equal except `status` and the metadata every write changes (someone else's spec or label
    change between our read and our write comes back in the answer and is judged afresh)."""
    if before.keys() - {"status"} != after.keys() - {"status"}:
        return False
    for field, value in before.items():
        if field == "status":
            continue
        if field != "metadata":
            if after[field] != value:
                return False
            continue
        old, new = value or {}, after[field] or {}
        if old.keys() - _VOLATILE_METADATA != new.keys() - _VOLATILE_METADATA:
            return False
        if any(new[k] != v for k, v in old.items() if k not in _VOLATILE_METADATA):
            return False
    return True
