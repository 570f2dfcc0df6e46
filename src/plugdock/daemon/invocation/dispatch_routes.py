"""Dispatch routes: ``/plugin/{tenant}/dispatch/<route>`` -> (access type, action) of the plugin protocol,
and the reassembly of blob chunks an agent strategy streams (the host expects whole blobs from agents)."""

from __future__ import annotations

import base64
from typing import Any

from plugdock.errors import PlugdockError

MAX_BLOB = 15 * 1024 * 1024
MAX_BLOB_CHUNK = 8192

DISPATCH_ROUTES: dict[str, tuple[str, str]] = {
    "tool/invoke": ("tool", "invoke_tool"),
    "tool/validate_credentials": ("tool", "validate_tool_credentials"),
    "tool/get_runtime_parameters": ("tool", "get_tool_runtime_parameters"),
    "llm/invoke": ("model", "invoke_llm"),
    "llm/num_tokens": ("model", "get_llm_num_tokens"),
    "text_embedding/invoke": ("model", "invoke_text_embedding"),
    "text_embedding/num_tokens": ("model", "get_text_embedding_num_tokens"),
    "multimodal_embedding/invoke": ("model", "invoke_multimodal_embedding"),
    "rerank/invoke": ("model", "invoke_rerank"),
    "multimodal_rerank/invoke": ("model", "invoke_multimodal_rerank"),
    "tts/invoke": ("model", "invoke_tts"),
    "tts/model/voices": ("model", "get_tts_model_voices"),
    "speech2text/invoke": ("model", "invoke_speech2text"),
    "moderation/invoke": ("model", "invoke_moderation"),
    "model/validate_provider_credentials": ("model", "validate_provider_credentials"),
    "model/validate_model_credentials": ("model", "validate_model_credentials"),
    "model/schema": ("model", "get_ai_model_schemas"),
    "model/polling/start": ("model", "start_polling"),
    "model/polling/check": ("model", "check_polling"),
    "agent_strategy/invoke": ("agent_strategy", "invoke_agent_strategy"),
    "oauth/get_authorization_url": ("oauth", "get_authorization_url"),
    "oauth/get_credentials": ("oauth", "get_credentials"),
    "oauth/refresh_credentials": ("oauth", "refresh_credentials"),
    "dynamic_select/fetch_parameter_options": ("dynamic_parameter", "fetch_parameter_options"),
    "trigger/invoke_event": ("trigger", "invoke_trigger_event"),
    "trigger/validate_credentials": ("trigger", "validate_trigger_credentials"),
    "trigger/dispatch_event": ("trigger", "dispatch_trigger_event"),
    "trigger/subscribe": ("trigger", "subscribe_trigger"),
    "trigger/unsubscribe": ("trigger", "unsubscribe_trigger"),
    "trigger/refresh": ("trigger", "refresh_trigger"),
    "datasource/validate_credentials": ("datasource", "validate_datasource_credentials"),
    "datasource/get_website_crawl": ("datasource", "invoke_website_datasource_get_crawl"),
    "datasource/get_online_document_pages": ("datasource", "invoke_online_document_datasource_get_pages"),
    "datasource/get_online_document_page_content": ("datasource", "invoke_online_document_datasource_get_page_content"),
    "datasource/online_drive_browse_files": ("datasource", "invoke_online_drive_browse_files"),
    "datasource/online_drive_download_file": ("datasource", "invoke_online_drive_download_file"),
}


class BlobTooLarge(PlugdockError):
    code = "blob_too_large"


class BlobAssembler:
    """Collects ``blob_chunk`` messages by id and gives back one ``blob`` message when a blob ends."""

    def __init__(self) -> None:
        self.parts: dict[str, bytearray] = {}

    def add(self, chunk: dict[str, Any]) -> dict[str, Any] | None:
        message = chunk.get("message") or {}
        blob_id = str(message.get("id"))
        piece = base64.b64decode(message.get("blob") or "")
        if len(piece) > MAX_BLOB_CHUNK:
            raise BlobTooLarge(f"a blob chunk of {len(piece)} bytes is over the {MAX_BLOB_CHUNK}-byte chunk limit")
        buffer = self.parts.setdefault(blob_id, bytearray())
        buffer.extend(piece)
        if len(buffer) > MAX_BLOB:
            del self.parts[blob_id]
            raise BlobTooLarge(f"a blob from the agent strategy is over the {MAX_BLOB}-byte file limit")
        if not message.get("end"):
            return None
        data = bytes(self.parts.pop(blob_id))
        return {"type": "blob", "message": {"blob": base64.b64encode(data).decode()}, "meta": chunk.get("meta")}
