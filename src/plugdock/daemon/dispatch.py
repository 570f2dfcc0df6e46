"""Dispatch routes: ``/plugin/{tenant}/dispatch/<route>`` -> (access type, action) of the plugin protocol."""

from __future__ import annotations

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
}
