"""What a request asks for beyond the path: PartialObjectMetadata (client-go's metadata informers)
or Tables (`kubectl get`) instead of full objects, read from the Accept header as kube-apiserver
does, and boolean query flags. Shared by the request handlers and watch streaming."""

from __future__ import annotations

from typing import Any

from aiohttp import web


def partial_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


def wants_metadata(request: web.Request) -> bool:
    """Metadata-only clients (client-go's metadata informers) ask for PartialObjectMetadata."""
    accept = request.headers.get("Accept", "")
    return "as=PartialObjectMetadata" in accept and "g=meta.k8s.io" in accept


def wants_table(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "as=Table" in accept and "g=meta.k8s.io" in accept


def truthy(value: str | None) -> bool:
    """A boolean query parameter (`watch=true`, `allowWatchBookmarks=1`)."""
    return value is not None and value.lower() in ("true", "1")
