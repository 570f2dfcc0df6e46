"""Differential conformance for trigger plugins: the signed_webhook example on the official SDK (ported with
``plugdock port``'s mapping) and on plugdock gets the same request lines over real stdio; the answers match."""

from __future__ import annotations

import binascii
from pathlib import Path

import pytest

from test_conformance import EXAMPLES, compare
from trigger_requests import requests

pytestmark = pytest.mark.slow


def test_trigger_every_action(tmp_path: Path, official_python: str) -> None:
    answers = compare(tmp_path, official_python, EXAMPLES / "signed_webhook", requests())
    dispatched = answers[0][0]["data"]
    assert dispatched["events"] == ["message_posted"] and dispatched["user_id"] == "ann"
    assert binascii.unhexlify(dispatched["response"]).startswith(b"HTTP/1.1 200 \r\n")
    assert answers[1][0]["data"]["error_type"] == "TriggerValidationError"
    assert answers[5][0]["data"] == {"variables": {"channel": "general", "author": "ann", "text": "Deploy is done"},
                                     "cancelled": False}
    assert answers[6][0]["data"] == {"variables": {}, "cancelled": True}
