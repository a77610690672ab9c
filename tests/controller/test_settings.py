"""Flagger's flags as long options, environment variables, and Flagger's own variables."""

from __future__ import annotations

import pytest

from coalmine.controller.settings import Settings, parse_settings


def test_defaults_follow_flagger() -> None:
    settings = parse_settings([], environ={})
    assert settings == Settings()
    assert settings.mesh_provider == "istio"
    assert settings.selector_labels == ("app", "name", "app.kubernetes.io/name")
    assert settings.min_analysis_interval == 10.0
    assert settings.listen_host_port == ("0.0.0.0", 8080)


def test_flags_parse_durations_lists_and_go_booleans() -> None:
    settings = parse_settings(
        [
            "--min-analysis-interval=1s",
            "--selector-labels=app,component",
            "--enable-leader-election",
            "--enable-config-tracking=false",
            "--listen-address=127.0.0.1:0",
        ],
        environ={},
    )
    assert settings.min_analysis_interval == 1.0
    assert settings.selector_labels == ("app", "component")
    assert settings.enable_leader_election is True
    assert settings.enable_config_tracking is False
    assert settings.listen_host_port == ("127.0.0.1", 0)


def test_every_flag_has_an_environment_variable_and_the_flag_wins() -> None:
    environ = {"COALMINE_MESH_PROVIDER": "gatewayapi:v1", "COALMINE_NAMESPACE": "apps"}
    assert parse_settings([], environ).mesh_provider == "gatewayapi:v1"
    assert parse_settings(["--mesh-provider", "linkerd"], environ).mesh_provider == "linkerd"
    assert parse_settings([], environ).lease_namespace == "apps"


def test_flaggers_own_variables_win_over_the_flag() -> None:
    settings = parse_settings(
        ["--slack-url", "http://flag", "--event-webhook", "http://flag"],
        environ={"SLACK_URL": "http://env", "EVENT_WEBHOOK_URL": "http://hook"},
    )
    assert settings.slack_url == "http://env"
    assert settings.event_webhook == "http://hook"


def test_flaggers_port_flag_sets_the_listen_address() -> None:
    assert parse_settings(["--port", "9090"], environ={}).listen_address == ":9090"


@pytest.mark.parametrize("argv", [["--min-analysis-interval", "soon"], ["--listen-address", "x"]])
def test_bad_values_are_refused_with_the_flag_named(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_settings(argv, environ={})
    assert argv[0] in capsys.readouterr().err


def test_the_controller_docs_list_every_flag_with_its_environment_variable() -> None:
    from pathlib import Path

    from coalmine.controller.settings import FLAGS, environment_name

    docs = (Path(__file__).resolve().parents[2] / "docs" / "controller.md").read_text()
    for flag in FLAGS:
        assert f"`--{flag.name}`" in docs
        assert f"`{environment_name(flag.name)}`" in docs
