"""Session affinity (Istio and Gateway API): the cookies that pin a user to the canary or the
primary, their life cycle across steps, and the Set-Cookie values the routing object sends."""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Mapping

from coalmine.api.models import Canary, SessionAffinity
from coalmine.routers.base import SessionAffinityCookies
from coalmine.routers.objects import service_names

COOKIE_HEADER = "Cookie"
SET_COOKIE_HEADER = "Set-Cookie"

TokenSource = Callable[[], str]


def random_token() -> str:
    """Ten random letters, the cookie value format Flagger uses."""
    return "".join(random.choices(string.ascii_letters, k=10))


def build_cookie(affinity: SessionAffinity, cookie: str, max_age: int | None = None) -> str:
    """The Set-Cookie value for `<name>=<value>` with the attributes the user configured."""
    parts = [cookie, f"Max-Age={affinity.effective_max_age if max_age is None else max_age}"]
    if affinity.domain:
        parts.append(f"Domain={affinity.domain}")
    if affinity.http_only:
        parts.append("HttpOnly")
    if affinity.partitioned:
        parts.append("Partitioned")
    if affinity.path:
        parts.append(f"Path={affinity.path}")
    if affinity.same_site:
        parts.append(f"SameSite={affinity.same_site}")
    if affinity.secure:
        parts.append("Secure")
    return "; ".join(parts)


def cookie_regex(cookie: str) -> str:
    name, _, value = cookie.partition("=")
    return f".*{name}.*{value}.*"


def next_cookies(
    canary: Canary, canary_weight: int, token: TokenSource, *, primary_cookie: bool = True
) -> SessionAffinityCookies:
    """Flagger's cookie life cycle: generate once per run while the canary gets traffic; when it
    gets none, the run's cookie becomes the previous one (expired on the client)."""
    analysis = canary.spec.analysis
    affinity = analysis.session_affinity if analysis else None
    status = canary.status
    session = status.session_affinity_cookie if status else None
    primary = status.primary_session_affinity_cookie if status else None
    previous = status.previous_session_affinity_cookie if status else None
    if affinity is None:
        return SessionAffinityCookies(session, primary, previous)
    if canary_weight > 0:
        session = session or f"{affinity.cookie_name}={token()}"
        if primary_cookie and affinity.primary_cookie_name:
            primary = primary or f"{affinity.primary_cookie_name}={token()}"
        return SessionAffinityCookies(session, primary, previous)
    if session:
        previous = session
    return SessionAffinityCookies(None, primary, previous)


def status_cookies(canary: Canary) -> SessionAffinityCookies:
    status = canary.status
    if status is None:
        return SessionAffinityCookies()
    return SessionAffinityCookies(
        status.session_affinity_cookie,
        status.primary_session_affinity_cookie,
        status.previous_session_affinity_cookie,
    )


def reconcile_cookies(
    canary: Canary, live_set_cookies: Mapping[str, str]
) -> SessionAffinityCookies:
    """The cookies to rebuild a live object with: the status's, or, when the status lost them
    (a crash between writing the route and the status), the ones the live object sets, so a
    reconcile never swaps the cookie under clients mid-run. Keys: `session`, `primary`."""
    cookies = status_cookies(canary)
    session = live_set_cookies.get("session")
    primary = live_set_cookies.get("primary")
    return SessionAffinityCookies(
        cookies.session_affinity_cookie or (session.split(";")[0].strip() if session else None),
        cookies.primary_session_affinity_cookie
        or (primary.split(";")[0].strip() if primary else None),
        cookies.previous_session_affinity_cookie,
    )


def affinity_of(canary: Canary) -> SessionAffinity | None:
    analysis = canary.spec.analysis
    return analysis.session_affinity if analysis else None


def primary_cookie_max_age(canary: Canary) -> int:
    analysis = canary.spec.analysis
    return int(analysis.interval_seconds()) if analysis else 60


def sticky_set_cookie(
    canary: Canary,
    affinity: SessionAffinity,
    backend: str | None,
    cookies: SessionAffinityCookies,
    *,
    primary_cookie: bool = True,
) -> str | None:
    """The Set-Cookie value the weighted route sends with responses from `backend` while the
    canary gets traffic: the run's cookie from the canary, the primary cookie (when used) from
    the primary, nothing from anything else."""
    names = service_names(canary)
    if backend == names.canary and cookies.session_affinity_cookie:
        return build_cookie(affinity, cookies.session_affinity_cookie)
    if backend == names.primary and primary_cookie and cookies.primary_session_affinity_cookie:
        return build_cookie(
            affinity, cookies.primary_session_affinity_cookie, primary_cookie_max_age(canary)
        )
    return None
