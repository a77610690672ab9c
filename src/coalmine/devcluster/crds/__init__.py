"""Official CRDs of the routing objects coalmine writes (Istio, Gateway API, SMI, Contour, …).

Shipped so that devcluster can serve them (the server then validates every routing object
exactly as a real cluster with those CRDs installed would) and tests need nothing outside the
repository. `SOURCES.md` names the upstream repository and commit of each file.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def crd_path(relative: str) -> Path:
    """Path of one bundled CRD file, e.g. `istio/networking.istio.io_virtualservices.yaml`."""
    return Path(str(resources.files(__name__).joinpath(relative)))
