"""Trigger plugins through a real ``plugdock serve`` over HTTP: the signed_webhook example on plugdock and its
port to the official SDK (dify-plugin from PyPI) install, are listed by the management routes with the official
declaration shape, and answer the six ``dispatch/trigger/*`` routes (and OAuth, dynamic options) alike."""

from __future__ import annotations

import binascii
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance_plugins import to_official
from daemon_harness import DaemonProcess
from trigger_requests import MESSAGE, SUBSCRIPTION, requests, webhook

EXAMPLE = Path(__file__).parent.parent / "examples" / "signed_webhook"
OFFICIAL_PLUGINS = Path("/work/.mirror/langgenius+dify-official-plugins/repo")
pytestmark = pytest.mark.slow
ROUTES = {("trigger", "invoke_trigger_event"): "trigger/invoke_event",
          ("trigger", "validate_trigger_credentials"): "trigger/validate_credentials",
          ("trigger", "dispatch_trigger_event"): "trigger/dispatch_event",
          ("trigger", "subscribe_trigger"): "trigger/subscribe",
          ("trigger", "unsubscribe_trigger"): "trigger/unsubscribe",
          ("trigger", "refresh_trigger"): "trigger/refresh",
          ("dynamic_parameter", "fetch_parameter_options"): "dynamic_select/fetch_parameter_options",
          ("oauth", "get_authorization_url"): "oauth/get_authorization_url",
          ("oauth", "get_credentials"): "oauth/get_credentials",
          ("oauth", "refresh_credentials"): "oauth/refresh_credentials"}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    d = DaemonProcess(tmp_path_factory.mktemp("trigger-home"), PLUGIN_MAX_EXECUTION_TIMEOUT="60").start()
    yield d
    d.stop()


def _official_port(target: Path) -> Path:
    official = to_official(EXAMPLE, target)
    manifest = official / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("name: signed_webhook", "name: official_webhook"))
    (official / "requirements.txt").write_text("dify-plugin>=0.10,<0.11\n")
    return official


def _answers(daemon: DaemonProcess, plugin_id: str) -> list[list[dict[str, Any]]]:
    out = []
    for request in requests():
        data = {k: v for k, v in request.items() if k not in ("type", "action")}
        out.append(daemon.dispatch(ROUTES[(request["type"], request["action"])], plugin_id, data))
    return out


def _errors_without_traces(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An error's wrapped message carries the official SDK's traceback in ``args``; plugdock sends none."""
    out = []
    for event in events:
        if event.get("code") != 0 and isinstance(event.get("message"), str):
            error = json.loads(event["message"])
            inner = json.loads(error["message"]) if error.get("error_type") == "PluginInvokeError" else error
            inner.pop("args", None)
            event = {**event, "message": inner}
        out.append(event)
    return out


def test_both_sdks_answer_every_route_alike(daemon: DaemonProcess, tmp_path: Path) -> None:
    daemon.install(EXAMPLE)
    daemon.install(_official_port(tmp_path / "official_webhook"))
    ours = _answers(daemon, "plugdock/signed_webhook")
    theirs = _answers(daemon, "plugdock/official_webhook")
    for request, mine, official in zip(requests(), ours, theirs, strict=True):
        assert _errors_without_traces(mine) == _errors_without_traces(official), request["action"]
    dispatched = ours[0][0]["data"]
    assert dispatched["events"] == ["message_posted"]
    assert binascii.unhexlify(dispatched["response"]).endswith(b'{"ok": true}')
    assert ours[5][0]["data"]["variables"]["author"] == "ann" and ours[6][0]["data"]["cancelled"] is True
    assert "TriggerValidationError" in ours[1][0]["message"]


def test_management_lists_triggers_with_the_official_declaration(daemon: DaemonProcess) -> None:
    daemon.install(EXAMPLE)
    listed = daemon.data(daemon.client.get("/plugin/t1/management/triggers", params={"page": 1, "page_size": 10}))
    ours = [t for t in listed if t["plugin_id"] == "plugdock/signed_webhook"]
    assert len(ours) == 1 and ours[0]["provider"] == "signed_webhook"
    declaration = ours[0]["declaration"]
    assert [e["identity"]["name"] for e in declaration["events"]] == ["message_posted"]
    assert declaration["subscription_constructor"]["credentials_schema"][0]["name"] == "api_key"
    assert "extra" not in declaration and all("extra" not in e for e in declaration["events"])
    one = daemon.data(daemon.client.get("/plugin/t1/management/trigger",
                                        params={"plugin_id": "plugdock/signed_webhook", "provider": "signed_webhook"}))
    assert one["declaration"] == declaration
    missing = daemon.client.get("/plugin/t1/management/trigger",
                                params={"plugin_id": "plugdock/signed_webhook", "provider": "nope"}).json()
    assert missing["code"] != 0
    manifest = daemon.data(daemon.client.get("/plugin/t1/management/fetch/manifest",
                                             params={"plugin_unique_identifier": ours[0]["plugin_unique_identifier"]}))
    assert manifest["trigger"] == declaration


def test_bad_webhooks_are_named_errors_and_the_plugin_survives(daemon: DaemonProcess) -> None:
    daemon.install(EXAMPLE)
    base = {"provider": "signed_webhook", "subscription": SUBSCRIPTION}
    garbage = daemon.dispatch("trigger/dispatch_event", "plugdock/signed_webhook",
                              {**base, "raw_http_request": "not hex"})
    assert garbage[0]["code"] != 0 and "raw_http_request is not a hex-encoded HTTP request" in garbage[0]["message"]
    unknown = daemon.dispatch("trigger/invoke_event", "plugdock/signed_webhook",
                              {**base, "event": "nope", "raw_http_request": webhook(MESSAGE), "parameters": {}})
    assert "Event `nope` not found in provider `signed_webhook`" in unknown[0]["message"]
    fine = daemon.dispatch("trigger/dispatch_event", "plugdock/signed_webhook",
                           {**base, "raw_http_request": webhook(MESSAGE)})
    assert fine[0]["data"]["events"] == ["message_posted"]


def _official_plugin(name: str, target: Path) -> Path:
    files = subprocess.run(["git", "-C", str(OFFICIAL_PLUGINS), "ls-tree", "-r", "HEAD", "--name-only",
                            f"triggers/{name}"], capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        out = target / rel.removeprefix(f"triggers/{name}/")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(subprocess.run(["git", "-C", str(OFFICIAL_PLUGINS), "show", f"HEAD:{rel}"],
                                       capture_output=True, check=True).stdout)
    return target


@pytest.mark.skipif(not OFFICIAL_PLUGINS.exists() or shutil.which("git") is None,
                    reason="the official plugins mirror is not on this machine")
def test_the_official_rsshub_trigger_answers_unchanged(daemon: DaemonProcess, tmp_path: Path) -> None:
    daemon.install(_official_plugin("rsshub_trigger", tmp_path / "rsshub"), timeout=600)
    feed = {"id": "e1", "type": "feed_update", "feed": {"id": "f", "title": "News"}, "data": {"items_new": []}}
    subscription = {"expires_at": -1, "endpoint": "https://dify.example/t/1", "properties": {"api_key": "k"}}
    base = {"provider": "rsshub_trigger", "subscription": subscription, "credentials": None, "credential_type": None}
    signed = binascii.hexlify(binascii.unhexlify(webhook(feed, secret=None)).replace(
        b"X-Event-Type: message.posted", b"X-Api-Key: k")).decode()
    dispatched = daemon.dispatch("trigger/dispatch_event", "langgenius/rsshub_trigger",
                                 {**base, "raw_http_request": signed})
    assert dispatched[0]["data"]["events"] == ["feed_update"], dispatched
    refused = daemon.dispatch("trigger/dispatch_event", "langgenius/rsshub_trigger",
                              {**base, "raw_http_request": webhook(feed, secret=None)})
    assert "TriggerValidationError" in refused[0]["message"]
    event = daemon.dispatch("trigger/invoke_event", "langgenius/rsshub_trigger", {
        **base, "event": "feed_update", "raw_http_request": signed, "parameters": {}, "credential_type": "api-key",
        "credentials": {}})
    assert event[0]["data"] == {"variables": feed, "cancelled": False}
    listed = daemon.data(daemon.client.get("/plugin/t1/management/triggers", params={"page": 1, "page_size": 10}))
    assert "rsshub_trigger" in {t["provider"] for t in listed}
