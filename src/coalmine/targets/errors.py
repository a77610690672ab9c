"""Errors raised by the pure target builders when the user's objects cannot be used."""

from __future__ import annotations


class TargetError(ValueError):
    """A user's object cannot be used as written; the message names object, field and reason.

    `retriable` tells the scheduler whether waiting can fix it (a rollout in progress) or not
    (a wrong selector, a missing mandatory ConfigMap).
    """

    def __init__(self, message: str, *, retriable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retriable = retriable
