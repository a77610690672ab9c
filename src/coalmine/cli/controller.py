"""`coalmine controller`: the operator (Flagger's flags, with one dash or two)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    from coalmine.controller.settings import add_arguments

    parser = subparsers.add_parser(
        "controller",
        help="run the operator",
        description="Run the operator. Every flag can also be set as COALMINE_<FLAG>.",
    )
    add_arguments(parser)
    parser.set_defaults(handler=run)


def install_signing_keys(path: str) -> bool:
    """Sign every webhook request with the keys in `path` (unsigned when empty); False on error."""
    import logging

    from coalmine.hooks import keys

    if not path:
        keys.install(())
        return True
    try:
        keys.install(keys.read_key_file(path))
    except ValueError as error:
        logging.getLogger("coalmine").error("--webhook-signing-key-file: %s", error)
        return False
    return True


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import signal

    from coalmine.controller.logs import configure_logging
    from coalmine.controller.runtime import Controller, StartupError
    from coalmine.controller.settings import settings_from

    settings = settings_from(args)
    configure_logging(settings.log_level, settings.zap_encoding)
    if not install_signing_keys(settings.webhook_signing_key_file):
        return 1
    controller = Controller(settings)

    async def main() -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, controller.stop)
        return await controller.run()

    try:
        return asyncio.run(main())
    except StartupError as error:
        logging.getLogger("coalmine").error("%s", error)
        return 1
