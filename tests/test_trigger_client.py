"""PluginTestClient's trigger methods on the signed_webhook example, in process."""

from __future__ import annotations

import binascii
from pathlib import Path

from plugdock.testing import PluginTestClient
from trigger_requests import MESSAGE, SUBSCRIPTION, webhook

EXAMPLE = Path(__file__).parent.parent / "examples" / "signed_webhook"


def test_every_trigger_action_through_the_client() -> None:
    client = PluginTestClient(EXAMPLE)
    dispatched = client.dispatch_trigger_event("signed_webhook", SUBSCRIPTION, webhook(MESSAGE)).raise_for_error()
    assert dispatched.chunks[0]["events"] == ["message_posted"]
    assert binascii.unhexlify(dispatched.chunks[0]["response"]).startswith(b"HTTP/1.1 200 ")
    unsigned = client.dispatch_trigger_event("signed_webhook", SUBSCRIPTION,
                                             client.webhook(headers={"X-Event-Type": "message.posted"}, body="{}"))
    assert unsigned.error == {"error_type": "TriggerValidationError", "message": "Invalid or missing X-Signature-256"}
    event = client.invoke_trigger_event("signed_webhook", "message_posted", SUBSCRIPTION, webhook(MESSAGE),
                                        parameters={"keyword": "nothing"}, payload=MESSAGE).raise_for_error()
    assert event.chunks == [{"variables": {}, "cancelled": True}]
    assert client.validate_trigger_credentials("signed_webhook", {"api_key": "x"}).error_line.startswith(
        "TriggerProviderCredentialValidationError: API keys start with sk-")  # type: ignore[union-attr]
    created = client.subscribe_trigger("signed_webhook", "https://h/e", {"channel": "general"},
                                       credentials={"api_key": "sk-1"}).raise_for_error()
    subscription = created.chunks[0]["subscription"]
    assert subscription["properties"]["external_id"] == "hook-general"
    assert client.refresh_trigger("signed_webhook", subscription).chunks[0]["subscription"] == subscription
    assert client.unsubscribe_trigger("signed_webhook", subscription).chunks == [
        {"subscription": {"success": True, "message": "removed hook-general"}}]
