"""`coalmine crds`: print the CustomResourceDefinitions (`coalmine crds | kubectl apply -f -`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "crds",
        help="print the CRDs (Canary, MetricTemplate, AlertProvider) as multi-document YAML",
        description="Print the CustomResourceDefinitions, e.g. `coalmine crds | kubectl apply -f -`.",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from coalmine.api.crds import render_all

    sys.stdout.write(render_all())
    return 0
