"""The `coalmine` command line: version, help, and subcommand registration."""

from __future__ import annotations

import subprocess
import sys

import pytest

from coalmine import __version__
from coalmine.cli import SUBCOMMANDS, main


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coalmine", *args], capture_output=True, text=True, timeout=60
    )


def test_version_flag_prints_the_package_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"coalmine {__version__}"


def test_help_lists_every_registered_subcommand() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for module in SUBCOMMANDS:
        assert module.rsplit(".", 1)[-1] in result.stdout


def test_no_subcommand_prints_usage_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: coalmine" in capsys.readouterr().err
