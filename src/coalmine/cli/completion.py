"""`coalmine completion SHELL`: shell completion (argcomplete), for `coalmine` and the kubectl plugin.

`eval "$(coalmine completion bash)"` completes `coalmine …` and `kubectl-coalmine …`. For
`kubectl coalmine …` kubectl itself asks the executable `kubectl_complete-coalmine` (kubectl 1.26+
plugin completion), which `complete_for_kubectl` serves from the same parser.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from typing import Any

SHELLS = ("bash", "zsh", "fish", "tcsh", "powershell")
PROGRAMS = ("coalmine", "kubectl-coalmine")
COBRA_NO_FILE_COMPLETION = 4
"""kubectl reads completions in cobra's format: one per line, then `:<directive>`."""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "completion",
        help="print the shell completion script (eval it in your shell's rc file)",
        description=(
            'Print the completion script for SHELL, e.g. `eval "$(coalmine completion bash)"` '
            "in ~/.bashrc. It completes coalmine and kubectl-coalmine; `kubectl coalmine` "
            "completes through the kubectl_complete-coalmine executable installed with coalmine."
        ),
    )
    parser.add_argument("shell", choices=SHELLS, metavar="SHELL", help=", ".join(SHELLS))
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from argcomplete.shell_integration import shellcode

    sys.stdout.write(shellcode(PROGRAMS, shell=args.shell))
    return 0


def complete(parser: argparse.ArgumentParser, words: list[str]) -> list[str]:
    """The completions argcomplete offers for `coalmine WORDS…` (the last word is the prefix)."""
    import argcomplete

    line = " ".join(["coalmine", *words])
    saved = dict(os.environ)
    os.environ.update(
        {
            "_ARGCOMPLETE": "1",
            "_ARGCOMPLETE_IFS": "\n",
            "COMP_LINE": line,
            "COMP_POINT": str(len(line)),
        }
    )
    output = io.StringIO()
    try:
        argcomplete.autocomplete(parser, exit_method=lambda _code: None, output_stream=output)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return [word.strip() for word in output.getvalue().split("\n") if word.strip()]


def complete_for_kubectl() -> int:
    """Entry point `kubectl_complete-coalmine`: kubectl passes the words after `coalmine`."""
    from coalmine.cli import build_parser

    for word in complete(build_parser(), sys.argv[1:] or [""]):
        print(word)
    print(f":{COBRA_NO_FILE_COMPLETION}")
    return 0


def canary_names(prefix: str, parsed_args: argparse.Namespace, **_kwargs: Any) -> list[str]:
    """NAME completion: the canaries of the namespace the command line selects (nothing when the
    cluster cannot be read within a few seconds: completion must never hang a shell)."""
    import asyncio

    from coalmine.cli.status.reading import connect
    from coalmine.kube.kinds import CANARY

    async def names() -> list[str]:
        async with asyncio.timeout(3), connect(parsed_args) as (api, namespace):
            items = (await api.list(CANARY, namespace)).items
        return [str((item.get("metadata") or {}).get("name") or "") for item in items]

    try:
        found = asyncio.run(names())
    except Exception:  # any failure: no suggestions, as kubectl does
        return []
    return sorted(name for name in found if name.startswith(prefix))
