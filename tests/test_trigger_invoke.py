"""``plugdock invoke DIR trigger ACTION`` on the signed_webhook example: the webhook from stdin, subscription
properties and headers from ``-p``, values checked against the declarations before any call."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

from click.testing import CliRunner

from plugdock.cli.main import cli

EXAMPLE = str(Path(__file__).parent.parent / "examples" / "signed_webhook")
BODY = b'{"author": "ann", "text": "Deploy done"}'


def run(*args: str, body: bytes = b"") -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["invoke", EXAMPLE, "trigger", *args], input=body)
    return result.exit_code, result.output


def test_dispatch_then_event_from_stdin() -> None:
    signature = "sha256=" + hmac.new(b"s", BODY, hashlib.sha256).hexdigest()
    code, out = run("dispatch_event", "-p", "properties.webhook_secret=s", "-p", "header.X-Event-Type=message.posted",
                    "-p", f"header.X-Signature-256={signature}", body=BODY)
    assert code == 0, out
    assert json.loads(out)["events"] == ["message_posted"]
    code, out = run("invoke_event", "-p", "keyword=deploy", body=BODY)
    assert code == 0 and json.loads(out)["variables"]["author"] == "ann", out
    code, out = run("message_posted/invoke_event", "-p", "keyword=nothing", body=BODY)
    assert code == 0 and json.loads(out) == {"variables": {}, "cancelled": True}


def test_constructor_actions_and_named_mistakes() -> None:
    code, out = run("subscribe", "-c", "api_key=sk-1", "-p", "channel=general")
    assert code == 0 and json.loads(out)["subscription"]["properties"]["external_id"] == "hook-general", out
    code, out = run("subscribe", "-c", "api_key=sk-1")
    assert code == 2 and "needs parameter channel (dynamic-select): pass -p channel=VALUE" in out
    code, out = run("validate_credentials", "-c", "api_key=nope")
    assert code == 1 and "TriggerProviderCredentialValidationError: API keys start with sk-" in out
    code, out = run("dispatch_event", "-p", "properties.secret=x")
    assert code == 2 and "has no property 'secret'" in out
    code, out = run("fly")
    assert code == 1 and "unknown trigger action 'fly'" in out
