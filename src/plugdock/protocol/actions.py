"""Access types and the actions each one carries (the ``type``/``action`` of a request's data)."""

from __future__ import annotations

from enum import StrEnum


class AccessType(StrEnum):
    TOOL = "tool"
    MODEL = "model"
    ENDPOINT = "endpoint"
    AGENT_STRATEGY = "agent_strategy"
    OAUTH = "oauth"
    DATASOURCE = "datasource"
    DYNAMIC_PARAMETER = "dynamic_parameter"
    TRIGGER = "trigger"


ACCESS_ACTIONS: dict[str, tuple[str, ...]] = {
    AccessType.TOOL: ("invoke_tool", "validate_tool_credentials", "get_tool_runtime_parameters"),
    AccessType.MODEL: (
        "invoke_llm", "get_llm_num_tokens", "invoke_text_embedding", "invoke_multimodal_embedding",
        "get_text_embedding_num_tokens", "invoke_rerank", "invoke_multimodal_rerank", "invoke_tts",
        "get_tts_model_voices", "invoke_speech2text", "invoke_moderation", "validate_provider_credentials",
        "validate_model_credentials", "get_ai_model_schemas", "start_polling", "check_polling",
    ),
    AccessType.ENDPOINT: ("invoke_endpoint",),
    AccessType.AGENT_STRATEGY: ("invoke_agent_strategy",),
    AccessType.OAUTH: ("get_authorization_url", "get_credentials", "refresh_credentials"),
    AccessType.DATASOURCE: (
        "validate_datasource_credentials", "invoke_website_datasource_get_crawl",
        "invoke_online_document_datasource_get_pages", "invoke_online_document_datasource_get_page_content",
        "invoke_online_drive_browse_files", "invoke_online_drive_download_file",
    ),
    AccessType.DYNAMIC_PARAMETER: ("fetch_parameter_options",),
    AccessType.TRIGGER: (
        "invoke_trigger_event", "dispatch_trigger_event", "subscribe_trigger", "unsubscribe_trigger",
        "refresh_trigger", "validate_trigger_credentials",
    ),
}
