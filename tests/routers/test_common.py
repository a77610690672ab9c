"""Shared router pieces: comparison that tolerates server defaults, cookies, metadata."""

from __future__ import annotations

from coalmine.api.models import SessionAffinity
from coalmine.routers.common import (
    build_cookie,
    contained_in,
    merge_onto,
    needs_write,
    next_cookies,
    weight_from,
)
from routers.canaries import make_canary, with_status


def test_contained_in_ignores_fields_the_server_added() -> None:
    assert contained_in({"a": 1, "b": [{"c": 2}]}, {"a": 1, "b": [{"c": 2, "d": 3}], "e": 4})
    assert not contained_in({"a": 1}, {"a": 2})
    assert not contained_in({"b": [1, 2]}, {"b": [1, 2, 3]})
    assert not contained_in({"x": True}, {"x": 1})
    assert contained_in({"w": 50}, {"w": 50.0})


def test_merge_onto_keeps_identity_and_foreign_metadata() -> None:
    live = {
        "apiVersion": "v1",
        "kind": "X",
        "metadata": {"name": "n", "resourceVersion": "9", "labels": {"theirs": "1"}},
        "spec": {"old": True},
        "status": {"x": 1},
    }
    built = {
        "apiVersion": "v1",
        "kind": "X",
        "metadata": {"name": "n", "labels": {"ours": "2"}},
        "spec": {"new": True},
    }
    merged = merge_onto(live, built)
    assert merged["metadata"] == {
        "name": "n",
        "resourceVersion": "9",
        "labels": {"theirs": "1", "ours": "2"},
    }
    assert merged["spec"] == {"new": True}
    assert "status" not in merged
    assert needs_write(live, built)
    assert not needs_write(merged, built)


def test_cookie_attributes_follow_the_configuration() -> None:
    affinity = SessionAffinity(cookie_name="c", max_age=0, same_site="Lax", secure=True)
    assert build_cookie(affinity, "c=v") == "c=v; Max-Age=86400; SameSite=Lax; Secure"
    assert build_cookie(affinity, "c=v", max_age=60).startswith("c=v; Max-Age=60")


def test_cookies_are_generated_once_per_run_and_retired_at_weight_0() -> None:
    canary = make_canary(
        analysis={"sessionAffinity": {"cookieName": "c", "primaryCookieName": "p"}}
    )
    first = next_cookies(canary, 10, lambda: "token")
    assert (
        first.session_affinity_cookie,
        first.primary_session_affinity_cookie,
        first.previous_session_affinity_cookie,
    ) == ("c=token", "p=token", None)
    running = with_status(
        canary, sessionAffinityCookie="c=live", primarySessionAffinityCookie="p=live"
    )
    assert next_cookies(running, 30, lambda: "other").session_affinity_cookie == "c=live"
    done = next_cookies(running, 0, lambda: "other")
    assert (done.session_affinity_cookie, done.previous_session_affinity_cookie) == (None, "c=live")


def test_weights_accept_integers_strings_and_milli_quantities() -> None:
    assert weight_from(40) == 40
    assert weight_from("60") == 60
    assert weight_from("50000m") == 50
