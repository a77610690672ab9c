"""The documentation's commands work with the code as it is.

Every `sh` block of the getting-started guide and the tutorials is run, as written, against
`coalmine demo --keep-running` (the tutorials' own set-up); every manifest in the docs passes
`coalmine check`; every `coalmine ...` command line in them parses.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from coalmine.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = [
    ROOT / "docs" / "getting-started.md",
    ROOT / "docs" / "install.md",
    *sorted((ROOT / "docs" / "tutorials").glob("*.md")),
]
DOC_KUBECONFIG = "/tmp/coalmine.kubeconfig"
DOC_LOADTESTER_PORT = "8089"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.DOTALL | re.MULTILINE)
HEREDOC = re.compile(r"<<'?YAML'?\n(.*?)^YAML$", re.DOTALL | re.MULTILINE)


def blocks(path: Path, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(path.read_text()) if lang == language]


def command_lines(text: str) -> Iterator[str]:
    """Logical lines (continuations joined, console prompts removed)."""
    for line in text.replace("\\\n", " ").splitlines():
        line = line.strip()
        yield line.removeprefix("$ ")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_every_coalmine_command_in_the_docs_parses() -> None:
    parser = build_parser()
    seen = 0
    for path in [*DOCS, ROOT / "README.md"]:
        for language in ("sh", "console"):
            for block in blocks(path, language):
                for line in command_lines(block):
                    for command in re.split(r"\s*(?:&&|;|\|)\s*", line):
                        words = shlex.split(command.rstrip("&").strip(), comments=True)
                        if words[:1] == ["scripts/demo"]:  # installs, then `coalmine demo ...`
                            words = ["coalmine", "demo", *words[1:]]
                        if words[:1] != ["coalmine"]:
                            continue
                        seen += 1
                        try:
                            parser.parse_args(words[1:])
                        except SystemExit as error:
                            raise AssertionError(
                                f"{path.name}: {command!r} does not parse"
                            ) from error
    assert seen >= 12


def test_every_manifest_in_the_docs_passes_coalmine_check(tmp_path: Path) -> None:
    files = []
    for path in DOCS:
        manifests = blocks(path, "yaml")
        for block in blocks(path, "sh"):
            manifests.extend(HEREDOC.findall(block))
        for index, text in enumerate(manifests):
            if "flagger.app" not in text:
                continue
            file = tmp_path / f"{path.stem}-{index}.yaml"
            file.write_text(text.replace("$APP", "http://127.0.0.1:9"))
            files.append(file)
    assert len(files) >= 10
    result = subprocess.run(
        [sys.executable, "-m", "coalmine", "check", *(f"-f{f}" for f in files)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def demo_cluster(tmp_path: Path) -> Iterator[Path]:
    """`coalmine demo --keep-running`, as the tutorials start it; its kubeconfig path."""
    kubeconfig = tmp_path / "kubeconfig"
    output = tmp_path / "demo.out"
    with output.open("w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "coalmine",
                "demo",
                "--metrics",
                "http",
                "--keep-running",
                f"--kubeconfig-out={kubeconfig}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 90
        while "Ctrl-C to stop" not in output.read_text():
            assert process.poll() is None, output.read_text()
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.2)
        yield kubeconfig
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_walkthroughs_run_as_written(demo_cluster: Path, tmp_path: Path) -> None:
    shim = tmp_path / "bin"
    shim.mkdir()
    coalmine = shim / "coalmine"
    coalmine.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m coalmine "$@"\n')
    coalmine.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "PATH": f"{shim}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(home),
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
    }
    running: dict[str, tuple[subprocess.Popen[str], Path]] = {}
    for path in DOCS:
        scripts = blocks(path, "sh")
        if not scripts:
            continue
        script = "set -euo pipefail\n" + "\n".join(scripts)
        script = script.replace(DOC_KUBECONFIG, str(demo_cluster))
        script = script.replace(DOC_LOADTESTER_PORT, str(free_port()))
        log = tmp_path / f"{path.stem}.log"
        with log.open("w") as out:
            running[path.name] = (
                subprocess.Popen(
                    ["bash", "-c", script],
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    text=True,
                ),
                log,
            )
    assert len(running) >= 6
    failures = []
    for name, (process, log) in running.items():
        try:
            code = process.wait(timeout=150)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        if code != 0:
            failures.append(f"{name} exited {code}:\n{log.read_text()[-3000:]}")
    assert not failures, "\n\n".join(failures)
