"""The signed_webhook example on plugdock over real stdio: bad input is a named error in its session and the
plugin goes on serving; a plugin whose classes are missing stops at start-up naming the file."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from plugdock.runtime.registry import PluginRegistry, RegistryError
from plugdock.runtime.trigger import load_trigger_providers, serialize_response
from trigger_requests import MESSAGE, PROVIDER, SUBSCRIPTION, webhook
from wire import PluginProcess

EXAMPLE = Path(__file__).parent.parent / "examples" / "signed_webhook"


def test_bad_input_is_a_named_error_and_the_plugin_keeps_serving() -> None:
    base = {"type": "trigger", "provider": PROVIDER}
    dispatch = {**base, "action": "dispatch_trigger_event", "subscription": SUBSCRIPTION}
    cases = [
        ({**dispatch, "raw_http_request": "zz-not-hex"}, "raw_http_request is not a hex-encoded HTTP request"),
        ({**dispatch, "raw_http_request": b"GARBAGE\r\n\r\n".hex()}, "bad request line"),
        ({**dispatch, "subscription": {"properties": {}}, "raw_http_request": webhook(MESSAGE)},
         "subscription.endpoint is required"),
        ({**dispatch, "raw_http_request": webhook(MESSAGE), "credential_type": "password"},
         "credential_type must be one of"),
        ({**base, "action": "invoke_trigger_event", "event": "message_posted", "subscription": SUBSCRIPTION},
         "request data is missing 'raw_http_request'"),
        ({**base, "action": "fly_trigger"}, "unknown action 'fly_trigger'"),
    ]
    plugin = PluginProcess(EXAMPLE, python=sys.executable)
    try:
        plugin.ready(timeout=30)
        for request, wanted in cases:
            (message, end) = plugin.session(plugin.request(request))
            assert message["type"] == "error" and wanted in message["data"]["message"], message
            assert end["type"] == "end"
        (answer, _) = plugin.session(plugin.request({**dispatch, "raw_http_request": webhook(MESSAGE)}))
        assert answer["data"]["events"] == ["message_posted"]
    finally:
        plugin.close(timeout=1)


def test_missing_constructor_class_stops_the_plugin_naming_the_file(tmp_path: Path) -> None:
    root = shutil.copytree(EXAMPLE, tmp_path / "plugin")
    source = root / "provider" / "signed_webhook.py"
    source.write_text(source.read_text().replace("class SignedWebhookConstructor(TriggerSubscriptionConstructor)",
                                                 "class SignedWebhookConstructor"))
    registry = PluginRegistry.load(root)
    try:
        load_trigger_providers(registry.root, registry.manifest)
    except RegistryError as exc:
        assert "Trigger subscription constructor configuration declared but no implementation found in " \
               "provider/signed_webhook.py" in str(exc)
    else:
        raise AssertionError("a declared constructor without its class must not load")


def test_response_bytes_are_the_official_form() -> None:
    from werkzeug import Response

    response = Response(b"x", status=418)
    response.headers["X-A"] = "b"
    response.headers.add("Set-Cookie", "a=1")
    response.headers.add("Set-Cookie", "b=2")
    assert serialize_response(response) == (b"HTTP/1.1 418 \r\nContent-Type: text/plain; charset=utf-8\r\nX-A: b\r\n"
                                            b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 1\r\n\r\nx")


def test_a_missing_event_class_is_one_load_error_line(tmp_path: Path) -> None:
    root = shutil.copytree(EXAMPLE, tmp_path / "plugin")
    (root / "events" / "message_posted.py").write_text("X = 1\n")
    plugin = PluginProcess(root, python=sys.executable)
    try:
        line = plugin.wait_for(lambda ln: ln.get("event") == "error", timeout=30)
        assert "plugin failed to load: events/message_posted.py: defines no concrete subclass of Event" in \
            line["data"]["error"]
        assert plugin.proc.wait(timeout=10) == 1
    finally:
        plugin.close(timeout=1)


def test_the_init_scaffold_runs(tmp_path: Path) -> None:
    import binascii
    import json

    from plugdock.cli.templates import PluginAnswers, render_plugin
    from plugdock.runtime.http_wire import serialize_request

    render_plugin(PluginAnswers("trigger", "my_hook", "acme", "A hook."), tmp_path)
    body = json.dumps({"n": 1}).encode()
    raw = binascii.hexlify(serialize_request("POST", "/hook", {"Host": "h", "Content-Type": "application/json",
                                                               "X-Webhook-Secret": "s"}, body)).decode()
    subscription = {"endpoint": "https://h/hook", "properties": {"webhook_secret": "s"}}
    base = {"type": "trigger", "provider": "my_hook", "subscription": subscription, "raw_http_request": raw}
    plugin = PluginProcess(tmp_path, python=sys.executable)
    try:
        plugin.ready(timeout=30)
        (dispatched, _) = plugin.session(plugin.request({**base, "action": "dispatch_trigger_event"}))
        assert dispatched["data"]["events"] == ["my_hook"] and dispatched["data"]["payload"] == {"n": 1}
        (event, _) = plugin.session(plugin.request({**base, "action": "invoke_trigger_event", "event": "my_hook",
                                                    "parameters": {}, "payload": {"n": 1}}))
        assert event["data"] == {"variables": {"payload": {"n": 1}}, "cancelled": False}
        wrong = {**subscription, "properties": {"webhook_secret": "other"}}
        (refused, _) = plugin.session(plugin.request({**base, "action": "dispatch_trigger_event",
                                                      "subscription": wrong}))
        assert refused["data"]["error_type"] == "TriggerValidationError"
    finally:
        plugin.close(timeout=1)


OFFICIAL_PLUGINS = Path("/work/.mirror/langgenius+dify-official-plugins/repo")


@pytest.mark.skipif(not OFFICIAL_PLUGINS.exists() or shutil.which("git") is None,
                    reason="the official plugins mirror is not on this machine")
def test_the_official_rsshub_trigger_ported_runs_on_plugdock(tmp_path: Path) -> None:
    import binascii
    import json
    import subprocess

    from plugdock.runtime.http_wire import serialize_request
    from plugdock.sdk.compat import port_source

    git = ["git", "-C", str(OFFICIAL_PLUGINS)]
    for rel in subprocess.run([*git, "ls-tree", "-r", "HEAD", "--name-only", "triggers/rsshub_trigger"],
                              capture_output=True, text=True, check=True).stdout.split():
        out = tmp_path / rel.removeprefix("triggers/rsshub_trigger/")
        out.parent.mkdir(parents=True, exist_ok=True)
        data = subprocess.run([*git, "show", f"HEAD:{rel}"], capture_output=True, check=True).stdout
        if out.suffix == ".py":
            text, notes = port_source(data.decode())
            assert not notes, notes
            data = text.encode()
        out.write_bytes(data)
    feed = {"id": "e1", "type": "feed_update", "data": {"items_new": []}}
    raw = binascii.hexlify(serialize_request("POST", "/t", {"Host": "h", "Content-Type": "application/json",
                                                            "X-Api-Key": "k"}, json.dumps(feed).encode())).decode()
    base = {"type": "trigger", "provider": "rsshub_trigger", "raw_http_request": raw, "credentials": None,
            "subscription": {"expires_at": -1, "endpoint": "https://h/t", "properties": {"api_key": "k"}}}
    plugin = PluginProcess(tmp_path, python=sys.executable)
    try:
        plugin.ready(timeout=30)
        (dispatched, _) = plugin.session(plugin.request({**base, "action": "dispatch_trigger_event"}))
        assert dispatched["data"]["events"] == ["feed_update"], dispatched
        (event, _) = plugin.session(plugin.request({**base, "action": "invoke_trigger_event", "event": "feed_update",
                                                    "parameters": {}}))
        assert event["data"] == {"variables": feed, "cancelled": False}
    finally:
        plugin.close(timeout=1)
