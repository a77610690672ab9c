"""What an unsigned request may run: per-program argument policies (allow-lists of options).

An allow-list of programs is not a boundary on its own (`wrk -s` runs Lua, `curl -o` writes
files, `curl -d @/etc/x` and `hey -D` send local files away, kubectl runs exec plugins). So
without a valid signature only the programs below run, and only with the options listed for
each: every option that reads or writes a local file, loads a script or changes a config is
absent, and operands must be http(s) URLs (or `host:port` for gRPC). Anything else is refused
with the option named. Pure: decisions on a final argv.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

Check = Callable[[str], str | None]  # a reason when the value is refused


def any_value(value: str) -> str | None:
    return None


def no_file(value: str) -> str | None:
    """Values curl, ghz and friends read from a file when they start with `@`."""
    if value.startswith("@"):
        return "reads a local file (@…)"
    if "%output{" in value:
        return "writes a local file (%output{…})"
    return None


def http_url(value: str) -> str | None:
    if re.match(r"(?i)^https?://[^\s]+$", value):
        return None
    return "must be an http:// or https:// URL"


def host_port(value: str) -> str | None:
    if re.fullmatch(r"[A-Za-z0-9.\-]+:\d{1,5}|\[[0-9A-Fa-f:.]+\]:\d{1,5}", value):
        return None
    return "must be host:port"


def duration(value: str) -> str | None:
    if re.fullmatch(r"\d+(\.\d+)?(ms|s|m|h|d)?", value):
        return None
    return "must be a number or a duration"


@dataclass(frozen=True)
class ArgPolicy:
    """Options a program may get without a signature, and what its operands must be."""

    flags: frozenset[str]
    options: Mapping[str, Check]
    operand: Check
    max_operands: int
    single_dash_long: bool = False  # Go's flag package: -name=value, -name value
    why: str = ""
    forbidden: Mapping[str, str] = field(default_factory=dict)


def _names(names: str) -> frozenset[str]:
    return frozenset(names.split())


def _opts(names: str, check: Check) -> dict[str, Check]:
    return dict.fromkeys(names.split(), check)


UNSIGNED_POLICIES: dict[str, ArgPolicy] = {
    "hey": ArgPolicy(
        flags=_names("-h2 -disable-compression -disable-keepalive -disable-redirects"),
        options={
            **_opts("-n -c -q -z -t -cpus", duration),
            **_opts("-m -H -A -T -d -a -host", any_value),
            "-o": lambda v: None if v == "csv" else "must be csv",
        },
        operand=http_url,
        max_operands=1,
        single_dash_long=True,
        forbidden={"-D": "sends a local file", "-x": "sends through a proxy"},
    ),
    "wrk": ArgPolicy(
        flags=_names("--latency -v --version"),
        options={
            **_opts("-c --connections -d --duration -t --threads --timeout -T", duration),
            **_opts("-H --header", any_value),
        },
        operand=http_url,
        max_operands=1,
        forbidden={"-s": "runs a Lua script", "--script": "runs a Lua script"},
    ),
    "curl": ArgPolicy(
        flags=_names(
            "-s --silent -S --show-error -f --fail --fail-with-body -L --location -i --include "
            "-I --head -v --verbose -k --insecure -G --get --compressed -N --no-buffer "
            "--http1.1 --http2 -4 -6 --no-keepalive"
        ),
        options={
            **_opts("-X --request -A --user-agent -e --referer -u --user -r --range", no_file),
            **_opts("-H --header -d --data --data-ascii --data-binary --json -w", no_file),
            **_opts("--write-out --resolve", no_file),
            "--data-raw": any_value,
            **_opts("-m --max-time --connect-timeout --retry --retry-delay", duration),
            **_opts("--retry-max-time --max-filesize", duration),
        },
        operand=http_url,
        max_operands=8,
        forbidden={
            "-o": "writes a file",
            "-O": "writes a file",
            "-K": "reads a config file",
            "--config": "reads a config file",
            "-T": "uploads a local file",
            "-F": "can upload a local file",
            "-c": "writes a cookie file",
            "-b": "can read a cookie file",
        },
    ),
    "ghz": ArgPolicy(
        flags=_names("--insecure --skipTLS --async --count-errors"),
        options={
            **_opts("--call --name --tags --authority -O --format --lb-strategy", any_value),
            **_opts("-d --data -m --metadata", no_file),
            **_opts("-n --total -c --concurrency -z --duration -x --max-duration", duration),
            **_opts("-r --rps -q --qps -t --timeout --connections --connect-timeout", duration),
            **_opts("--cpus", duration),
            **_opts("--keepalive --skipFirst", duration),
        },
        operand=host_port,
        max_operands=1,
        forbidden={
            "--proto": "reads a local file",
            "--protoset": "reads a local file",
            "--config": "reads a config file",
            "-o": "writes a file",
            "--output": "writes a file",
            "-D": "reads a local file",
            "-B": "reads a local file",
            "--debug": "writes a file",
        },
    ),
    "grep": ArgPolicy(
        flags=_names(
            "-q --quiet --silent -s -i --ignore-case -v --invert-match -E --extended-regexp "
            "-F --fixed-strings -c --count -w --word-regexp -x --line-regexp -o "
            "--only-matching -n"
        ),
        options=_opts("-m --max-count -A -B -C", duration),
        operand=any_value,
        max_operands=1,  # the pattern; a second operand would be a file to read
        forbidden={"-f": "reads a local file", "-r": "reads files", "-R": "reads files"},
    ),
    "grpc_health_probe": ArgPolicy(
        flags=_names("-tls -tls-no-verify -v"),
        options={
            "-addr": host_port,
            **_opts("-connect-timeout -rpc-timeout", duration),
            **_opts("-service -tls-server-name -user-agent", any_value),
        },
        operand=any_value,
        max_operands=0,
        single_dash_long=True,
        forbidden={
            "-tls-ca-cert": "reads a local file",
            "-tls-client-cert": "reads a local file",
            "-tls-client-key": "reads a local file",
        },
    ),
    "sleep": ArgPolicy(flags=frozenset(), options={}, operand=duration, max_operands=1),
}


def check_unsigned(argv: list[str], policies: Mapping[str, ArgPolicy] = UNSIGNED_POLICIES) -> str:
    """'' when `argv` is allowed without a signature, else the reason it is not."""
    program = argv[0]
    policy = policies.get(program)
    if policy is None:
        allowed = ", ".join(sorted(policies))
        return (
            f"program {program!r} needs a signed request (unsigned requests may run only "
            f"{allowed}, with the options in docs/loadtester.md)"
        )
    problem = _check_arguments(policy, argv[1:])
    return f"{program}: {problem} (not allowed in an unsigned request)" if problem else ""


def _refused_option(policy: ArgPolicy, name: str) -> str:
    why = policy.forbidden.get(name)
    return f"option {name} {why}" if why else f"option {name} is not on the allow-list"


def _check_arguments(policy: ArgPolicy, args: list[str]) -> str:
    operands = 0
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg.startswith("-") and len(arg) > 1 and arg != "--":
            problem, used = _check_option(policy, arg, args[index] if index < len(args) else None)
            if problem:
                return problem
            index += used
            continue
        operands += 1
        reason = policy.operand(arg)
        if reason:
            return f"operand {arg!r} {reason}"
    if operands > policy.max_operands:
        return f"at most {policy.max_operands} operand(s)"
    return ""


def _check_option(policy: ArgPolicy, arg: str, following: str | None) -> tuple[str, int]:
    """(reason or '', how many following arguments the option consumed)."""
    if arg.startswith("--") or policy.single_dash_long:
        name, separator, value = arg.partition("=")
        if name in policy.flags and not separator:
            return "", 0
        return _option_value(policy, name, value if separator else following, not separator)
    for position in range(1, len(arg)):  # a cluster of short options: -sSd value, -dvalue
        name = f"-{arg[position]}"
        if name in policy.flags:
            continue
        rest = arg[position + 1 :]
        return _option_value(policy, name, rest or following, not rest)
    return "", 0


def _option_value(
    policy: ArgPolicy, name: str, value: str | None, from_next: bool
) -> tuple[str, int]:
    check = policy.options.get(name)
    if check is None:
        return _refused_option(policy, name), 0
    if value is None:
        return f"option {name} needs a value", 0
    reason = check(value)
    if reason:
        return f"option {name} value {value!r} {reason}", 0
    return "", int(from_next)
