"""Daemon settings: defaults < config file < environment (official names) < flags, each with its source."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugdock.daemon.settings import load_settings
from plugdock.errors import PlugdockError


def test_precedence_and_sources(tmp_path: Path) -> None:
    config = tmp_path / "plugdock.toml"
    config.write_text('port = 6000\nhost = "0.0.0.0"\nforce_verifying_signature = false\n')
    env = {"PLUGDOCK_HOME": str(tmp_path / "home"), "SERVER_PORT": "7000", "SERVER_KEY": "secret"}
    settings = load_settings(config, {"host": "127.0.0.2"}, environ=env)
    assert (settings.port, settings.host, settings.force_verifying_signature) == (7000, "127.0.0.2", False)
    sources = {name: source for name, _, source in settings.describe()}
    assert sources["port"] == "env SERVER_PORT" and sources["host"] == "flag"
    assert sources["force_verifying_signature"].startswith("config file")
    shown = {name: value for name, value, _ in settings.describe()}
    assert shown["server_key"] == "***"
    assert settings.database_url == f"sqlite:///{tmp_path / 'home' / 'plugdock.db'}"


def test_generated_key_is_kept_across_starts(tmp_path: Path) -> None:
    env = {"PLUGDOCK_HOME": str(tmp_path)}
    first = load_settings(environ=env).server_key
    assert len(first) > 20 and load_settings(environ=env).server_key == first
    assert (tmp_path / "server.key").stat().st_mode & 0o077 == 0


def test_bad_settings_are_named(tmp_path: Path) -> None:
    with pytest.raises(PlugdockError, match="setting port: 'abc' is not a valid int"):
        load_settings(environ={"PLUGDOCK_HOME": str(tmp_path), "SERVER_PORT": "abc"})
    config = tmp_path / "c.toml"
    config.write_text("portt = 1\n")
    with pytest.raises(PlugdockError, match="unknown setting 'portt'"):
        load_settings(config, environ={"PLUGDOCK_HOME": str(tmp_path)})


@pytest.mark.parametrize(("text", "value"), [("true", True), ("True", True), ("1", True), ("t", True), ("on", True),
                                             ("false", False), ("FALSE", False), ("0", False), ("f", False),
                                             ("no", False)])
def test_booleans_read_as_the_official_daemon_reads_them(tmp_path: Path, text: str, value: bool) -> None:
    settings = load_settings(environ={"PLUGDOCK_HOME": str(tmp_path), "FORCE_VERIFYING_SIGNATURE": text})
    assert settings.force_verifying_signature is value


def test_a_mistyped_boolean_is_refused_rather_than_read_as_false(tmp_path: Path) -> None:
    """`ture` once turned signature verification off without a word."""
    with pytest.raises(PlugdockError, match="setting force_verifying_signature: 'ture' is not a valid bool"):
        load_settings(environ={"PLUGDOCK_HOME": str(tmp_path), "FORCE_VERIFYING_SIGNATURE": "ture"})


def test_an_unreadable_trusted_key_stops_the_start_naming_the_variable_and_file(tmp_path: Path) -> None:
    env = {"PLUGDOCK_HOME": str(tmp_path), "THIRD_PARTY_SIGNATURE_VERIFICATION_PUBLIC_KEYS": "/nowhere/k.pem"}
    load_settings(environ=env)  # not enabled: not read (the banner says the keys are ignored)
    with pytest.raises(PlugdockError) as refused:
        load_settings(environ={**env, "THIRD_PARTY_SIGNATURE_VERIFICATION_ENABLED": "true"})
    assert str(refused.value) == ("third_party_signature_keys (env THIRD_PARTY_SIGNATURE_VERIFICATION_PUBLIC_KEYS): "
                                  "/nowhere/k.pem: cannot read public key: No such file or directory")


def test_the_debug_socket_is_not_a_setting(tmp_path: Path) -> None:
    names = {name for name, _, _ in load_settings(environ={"PLUGDOCK_HOME": str(tmp_path)}).describe()}
    assert "remote_installing_socket" not in names and "sources" not in names
    config = tmp_path / "c.toml"
    config.write_text("remote_installing_socket = 1\n")
    with pytest.raises(PlugdockError, match="unknown setting 'remote_installing_socket'"):
        load_settings(config, environ={"PLUGDOCK_HOME": str(tmp_path)})
