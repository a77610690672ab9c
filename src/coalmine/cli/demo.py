"""`coalmine demo`: the embedded default release (built in the demo issue)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "demo", help="run a complete canary release on this machine, no cluster needed"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    print(
        "coalmine demo: the embedded release is not built yet; see the README for what works today."
    )
    return 0
