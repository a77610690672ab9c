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


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import signal

    from coalmine.controller.logs import configure_logging
    from coalmine.controller.runtime import Controller, StartupError
    from coalmine.controller.settings import settings_from

    settings = settings_from(args)
    configure_logging(settings.log_level, settings.zap_encoding)
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
