"""The controller's settings: Flagger's flags, each with an environment variable.

Flagger's chart passes Go-style flags (`-mesh-provider=istio`, `-log-level warn`, `-version`), so
every flag is accepted with one dash or two (`go_style_argv`). Every flag `--some-flag` can also be
set as `COALMINE_SOME_FLAG`; a flag on the command line wins over that variable. Flagger's own
variables (`SLACK_URL`, `EVENT_WEBHOOK_URL`, …) are honoured as Flagger honours them: a non-empty
variable wins over the flag. Boolean flags accept Go's forms (`--enable-leader-election`,
`--enable-config-tracking=false`).
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from coalmine import __version__
from coalmine.api import naming
from coalmine.api.models import parse_go_duration
from coalmine.controller.logs import LEVELS

FLAGGER_ENVIRONMENT_OVERRIDES = {
    "slack_url": "SLACK_URL",
    "slack_token": "SLACK_TOKEN",
    "slack_proxy_url": "SLACK_PROXY_URL",
    "msteams_url": "MSTEAMS_URL",
    "msteams_proxy_url": "MSTEAMS_PROXY_URL",
    "event_webhook": "EVENT_WEBHOOK_URL",
}
ENVIRONMENT_PREFIX = "COALMINE_"
DEFAULT_THREADINESS = 256
"""Cycles running at once. Far above what the API requests in flight (20) can serve, so it never
slows steady work; it bounds memory in a burst: 10,000 targets changed within 30 s started 10,000
cycles that each held their state while queued for a request slot (+160 MiB of RSS)."""


@dataclass(frozen=True)
class Settings:
    kubeconfig: str = ""
    kubeconfig_context: str = ""
    kubeconfig_service_mesh: str = ""
    metrics_server: str = "http://prometheus:9090"
    control_loop_interval: float = 10.0
    min_analysis_interval: float = 10.0
    log_level: str = "info"
    zap_encoding: str = "json"
    listen_address: str = ":8080"
    slack_url: str = ""
    slack_token: str = ""
    slack_proxy_url: str = ""
    slack_user: str = "flagger"
    slack_channel: str = ""
    msteams_url: str = ""
    msteams_proxy_url: str = ""
    event_webhook: str = ""
    include_label_prefix: tuple[str, ...] = ("",)
    namespace: str = ""
    mesh_provider: str = "istio"
    selector_labels: tuple[str, ...] = naming.DEFAULT_SELECTOR_LABELS
    ingress_annotations_prefix: str = "nginx.ingress.kubernetes.io"
    ingress_class: str = ""
    mesh_name: str = ""
    enable_leader_election: bool = False
    leader_election_namespace: str = "kube-system"
    leader_election_lease: float = 60.0
    leader_election_renew_deadline: float = 15.0
    leader_election_retry: float = 5.0
    enable_config_tracking: bool = True
    cluster_name: str = ""
    no_cross_namespace_refs: bool = False
    webhook_signing_key_file: str = ""
    # Client tuning (Flagger's Go client flags); 0 means no limit.
    master: str = ""
    kubeconfig_qps: float = 0.0
    kubeconfig_burst: int = 0
    threadiness: int = DEFAULT_THREADINESS
    # Sharding across replicas (docs/controller.md "Scaling out").
    shards: str = "off"
    shard_group: str = "coalmine"
    cycle_ledger: str = ""

    @property
    def log_json(self) -> bool:
        return self.zap_encoding == "json"

    @property
    def lease_namespace(self) -> str:
        """Flagger puts the lease in the watched namespace when one is set."""
        return self.namespace or self.leader_election_namespace

    @property
    def listen_host_port(self) -> tuple[str, int]:
        host, _, port = self.listen_address.rpartition(":")
        return host or "0.0.0.0", int(port)


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "t", "true", "yes", "on"}:
        return True
    if lowered in {"0", "f", "false", "no", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {text!r}")


def parse_duration(text: str) -> float:
    seconds = parse_go_duration(text)
    if seconds is None:
        raise argparse.ArgumentTypeError(f"not a duration (like 10s, 1m): {text!r}")
    return seconds


def parse_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(","))


def parse_log_level(text: str) -> str:
    level = text.strip().lower()
    if level not in LEVELS:
        raise argparse.ArgumentTypeError(f"not a log level (debug, info, warn, error): {text!r}")
    return level


def parse_encoding(text: str) -> str:
    if text not in ("json", "console"):
        raise argparse.ArgumentTypeError(f"not a zap encoding (json or console): {text!r}")
    return text


def parse_shards(text: str) -> str:
    mode = text.strip().lower()
    if mode in ("", "0", "1", "off", "false"):
        return "off"
    if mode == "auto":
        return "auto"
    raise argparse.ArgumentTypeError(
        f"not a sharding mode (off, or auto: split canaries over the live replicas): {text!r}"
    )


def parse_count(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def parse_rate(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def parse_listen_address(text: str) -> str:
    _host, separator, port = text.rpartition(":")
    if not separator or not port.isdigit():
        raise argparse.ArgumentTypeError(f"not a listen address (like :8080): {text!r}")
    return text


@dataclass(frozen=True)
class _Flag:
    name: str
    help: str
    kind: str = "str"  # a key of _CONVERTERS


FLAGS: tuple[_Flag, ...] = (
    _Flag(
        "kubeconfig",
        "kubeconfig file; when empty: $KUBECONFIG if set, else the pod's service account "
        "(in-cluster), else ~/.kube/config",
    ),
    _Flag("kubeconfig-context", "context of the kubeconfig to use (default: its current context)"),
    _Flag(
        "kubeconfig-service-mesh",
        "kubeconfig of the cluster holding the routing objects (routing CRDs: VirtualService, "
        "HTTPRoute, TrafficSplit, HTTPProxy, ...); empty: --kubeconfig",
    ),
    _Flag("metrics-server", "Prometheus URL for builtin metrics"),
    _Flag("control-loop-interval", "how often jobs are reconciled with canaries", "duration"),
    _Flag(
        "min-analysis-interval",
        "shortest analysis interval; shorter ones are raised to it",
        "duration",
    ),
    _Flag("log-level", "debug, info, warn or error", "level"),
    _Flag("zap-encoding", "log format: json (one object per line) or console", "encoding"),
    _Flag("listen-address", "address of /metrics, /healthz and /readyz", "address"),
    _Flag("slack-url", "global Slack webhook (env SLACK_URL wins)"),
    _Flag("slack-token", "Slack bearer token (env SLACK_TOKEN wins)"),
    _Flag("slack-proxy-url", "proxy for Slack (env SLACK_PROXY_URL wins)"),
    _Flag("slack-user", "Slack username"),
    _Flag("slack-channel", "Slack channel (required for the global Slack notifier)"),
    _Flag("msteams-url", "global MS Teams webhook, instead of Slack (env MSTEAMS_URL wins)"),
    _Flag("msteams-proxy-url", "proxy for MS Teams (env MSTEAMS_PROXY_URL wins)"),
    _Flag("event-webhook", "global event webhook (env EVENT_WEBHOOK_URL wins)"),
    _Flag(
        "include-label-prefix",
        "comma-separated label/annotation prefixes copied to primaries (* = all)",
        "list",
    ),
    _Flag("namespace", "watch only this namespace"),
    _Flag("mesh-provider", "default provider of canaries without spec.provider"),
    _Flag("selector-labels", "ordered candidate selector labels", "list"),
    _Flag("ingress-annotations-prefix", "NGINX annotation prefix"),
    _Flag("ingress-class", "Contour ingressClassName"),
    _Flag("mesh-name", "App Mesh (v1beta1) mesh of canaries without spec.service.meshName"),
    _Flag("enable-leader-election", "run several replicas; only the lease holder acts", "bool"),
    _Flag("leader-election-namespace", "namespace of the lease (--namespace wins when set)"),
    _Flag("leader-election-lease", "lease duration", "duration"),
    _Flag(
        "leader-election-renew-deadline",
        "give up leadership after failing to renew this long",
        "duration",
    ),
    _Flag("leader-election-retry", "lease retry period", "duration"),
    _Flag("enable-config-tracking", "track ConfigMaps and Secrets of workload targets", "bool"),
    _Flag("cluster-name", "cluster name shown in alerts"),
    _Flag("no-cross-namespace-refs", "refuse references to other namespaces", "bool"),
    _Flag("master", "API server URL; overrides the kubeconfig's server"),
    _Flag("kubeconfig-qps", "API requests per second (token bucket; 0 = no limit)", "float"),
    _Flag("kubeconfig-burst", "API requests allowed in a burst above the QPS", "int"),
    _Flag(
        "threadiness",
        f"canary cycles run at once (default {DEFAULT_THREADINESS}; 0 = no limit)",
        "int",
    ),
    _Flag(
        "webhook-signing-key-file",
        "file holding the HMAC key (one per line) that signs every webhook request",
    ),
    _Flag(
        "shards",
        "auto: replicas split the canaries by membership Leases (off: one replica acts)",
        "shards",
    ),
    _Flag("shard-group", "label value of this installation's membership Leases"),
    _Flag("cycle-ledger", "file getting one line per canary cycle (bench/shards.py)"),
)

_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "str": str,
    "bool": parse_bool,
    "duration": parse_duration,
    "list": parse_list,
    "address": parse_listen_address,
    "level": parse_log_level,
    "encoding": parse_encoding,
    "int": parse_count,
    "float": parse_rate,
    "shards": parse_shards,
}

# Flags accepted for compatibility that have no meaning here: `--port` (folded into
# `--listen-address`), zap's global-logger switch and klog's flags (Go's client library logger).
ACCEPTED_AND_IGNORED = ("port", "vmodule", "stderrthreshold", "log_dir", "log_file",
                        "log_file_max_size", "log_backtrace_at", "v")  # fmt: skip
ACCEPTED_AND_IGNORED_BOOLEANS = ("zap-replace-globals", "logtostderr", "alsologtostderr",
                                 "skip_headers", "skip_log_headers", "add_dir_header",
                                 "one_output")  # fmt: skip
LEGACY_LOG_JSON = "log-json"
"""coalmine's older `--log-json[=BOOL]`: the same as `--zap-encoding=json|console`."""

_GO_FLAG = re.compile(r"-[A-Za-z][A-Za-z0-9_-]*(=.*)?", re.DOTALL)


def go_style_argv(argv: Sequence[str]) -> list[str]:
    """Go's flag package takes `-flag` and `--flag` alike; argparse wants two dashes for long
    names, so single-dash flags gain a dash. `--` ends the flags, as in Go."""
    out: list[str] = []
    for position, arg in enumerate(argv):
        if arg == "--":
            return out + list(argv[position:])
        out.append("-" + arg if _GO_FLAG.fullmatch(arg) and arg != "-h" else arg)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = Settings()
    for flag in FLAGS:
        attribute = flag.name.replace("-", "_")
        default = getattr(defaults, attribute)
        kwargs: dict[str, Any] = {
            "dest": attribute,
            "default": None,
            "type": _CONVERTERS[flag.kind],
            "help": _help(flag, default),
        }
        if flag.kind == "bool":
            kwargs.update(nargs="?", const=True, metavar="BOOL")
        parser.add_argument(f"--{flag.name}", **kwargs)
    for name in ACCEPTED_AND_IGNORED:
        parser.add_argument(
            f"--{name}", dest=f"ignored_{name.replace('-', '_')}", help=argparse.SUPPRESS
        )
    for name in (*ACCEPTED_AND_IGNORED_BOOLEANS, LEGACY_LOG_JSON):
        parser.add_argument(
            f"--{name}",
            dest=f"ignored_{name.replace('-', '_')}",
            type=parse_bool,
            nargs="?",
            const=True,
            help=argparse.SUPPRESS,
        )
    parser.add_argument("--version", action="version", version=f"coalmine {__version__}")


def _help(flag: _Flag, default: Any) -> str:
    """The flag's text with its default and variable, the default once (not when the text
    already says it, not when it is empty)."""
    shown = ",".join(default) if isinstance(default, tuple) else str(default)
    extra = [] if "(default:" in flag.help or shown == "" else [f"default: {shown}"]
    extra.append(f"env {environment_name(flag.name)}")
    return f"{flag.help} ({'; '.join(extra)})"


def environment_name(flag: str) -> str:
    return ENVIRONMENT_PREFIX + flag.upper().replace("-", "_")


def settings_from(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Settings:
    """Flag, else COALMINE_ variable, else default; Flagger's variables win over all when set."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    by_attribute = {flag.name.replace("-", "_"): flag for flag in FLAGS}
    for item in fields(Settings):
        flag = by_attribute.get(item.name)
        if flag is None:
            continue
        value = getattr(args, item.name, None)
        if value is None and environ.get(environment_name(flag.name)):
            value = _CONVERTERS[flag.kind](environ[environment_name(flag.name)])
        override = FLAGGER_ENVIRONMENT_OVERRIDES.get(item.name)
        if override and environ.get(override):
            value = environ[override]
        if value is not None:
            values[item.name] = value
    port = getattr(args, "ignored_port", None)
    if port and "listen_address" not in values:
        values["listen_address"] = f":{port}"
    log_json = getattr(args, "ignored_log_json", None)
    if log_json is not None and "zap_encoding" not in values:
        values["zap_encoding"] = "json" if log_json else "console"
    return Settings(**values)


def parse_settings(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(prog="coalmine controller")
    add_arguments(parser)
    return settings_from(parser.parse_args(go_style_argv(argv)), environ)
