"""The fields of each action's request: what a dispatch body's ``data`` carries, and what reaches the plugin
with ``type``, ``action`` and ``user_id`` added.

One model per action, with the names and types of the official SDK's ``core/entities/plugin/request.py``
(tests/test_dispatch_openapi.py compares them field by field with the installed ``dify-plugin``). They are
lenient on purpose: nested objects (prompt messages, subscriptions, multimodal documents) stay plain
mappings, and unknown fields are kept, because the plugin is the one that validates its input; the daemon
uses these models to document each dispatch route, not to refuse a body the plugin would accept.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

CredentialType = Literal["api-key", "oauth2", "unauthorized"]
ModelType = Literal["llm", "text-embedding", "rerank", "speech2text", "moderation", "tts"]
Mapping = dict[str, Any]


class ActionData(BaseModel):
    """The base of every action's data: fields the model does not name are kept, not refused."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())


# -- tools -------------------------------------------------------------------------------------------------
class InvokeTool(ActionData):
    provider: str
    tool: str
    credentials: Mapping
    credential_type: CredentialType = "api-key"
    tool_parameters: Mapping


class ValidateToolCredentials(ActionData):
    provider: str
    credentials: Mapping


class GetToolRuntimeParameters(ActionData):
    provider: str
    tool: str
    credentials: Mapping


# -- models ------------------------------------------------------------------------------------------------
class ModelAccess(ActionData):
    provider: str
    model_type: ModelType
    model: str
    credentials: Mapping


class InvokeLLM(ModelAccess):
    prompt_messages: list[Mapping] = Field(description="PromptMessage objects: role, content, name, tool calls")
    model_parameters: Mapping
    stop: list[str] | None
    tools: list[Mapping] | None = Field(description="PromptMessageTool objects: name, description, parameters")
    json_schema: Mapping | None = None
    stream: bool = True


class StartPolling(InvokeLLM):
    stream: Literal[False] = False


class CheckPolling(ModelAccess):
    plugin_state: Mapping = Field(min_length=1, description="what start_polling answered, handed back")


class GetLLMNumTokens(ModelAccess):
    prompt_messages: list[Mapping]
    tools: list[Mapping] | None


class InvokeTextEmbedding(ModelAccess):
    texts: list[str]
    input_type: Literal["document", "query"]


class InvokeMultimodalEmbedding(ModelAccess):
    model_type: ModelType = "text-embedding"
    documents: list[Mapping] = Field(description="MultiModalContent objects: content, content_type")
    input_type: Literal["document", "query"] = "document"


class GetTextEmbeddingNumTokens(ModelAccess):
    texts: list[str]


class InvokeRerank(ModelAccess):
    query: str
    docs: list[str]
    score_threshold: float | None
    top_n: int | None


class InvokeMultimodalRerank(ModelAccess):
    model_type: ModelType = "rerank"
    query: Mapping = Field(description="a MultiModalContent object")
    docs: list[Mapping]
    score_threshold: float | None
    top_n: int | None


class InvokeTTS(ModelAccess):
    content_text: str
    voice: str
    tenant_id: str


class GetTTSVoices(ModelAccess):
    language: str | None


class InvokeSpeech2Text(ModelAccess):
    file: str = Field(description="the audio, hex-encoded")


class InvokeModeration(ModelAccess):
    text: str


class ValidateProviderCredentials(ActionData):
    provider: str
    credentials: Mapping


class ValidateModelCredentials(ModelAccess):
    pass


class GetAIModelSchemas(ModelAccess):
    pass


# -- agent strategies, OAuth, dynamic options ----------------------------------------------------------------
class InvokeAgentStrategy(ActionData):
    agent_strategy_provider: str
    agent_strategy: str
    agent_strategy_params: Mapping


class GetAuthorizationUrl(ActionData):
    provider: str
    redirect_uri: str
    system_credentials: Mapping


class GetCredentials(GetAuthorizationUrl):
    raw_http_request: str = Field(description="the OAuth callback request, hex-encoded HTTP/1.1 bytes")


class RefreshCredentials(GetAuthorizationUrl):
    credentials: Mapping


class FetchParameterOptions(ActionData):
    credentials: Mapping
    credential_type: CredentialType = "unauthorized"
    provider: str
    provider_action: str = Field(description="the tool, trigger or datasource whose parameter it is")
    parameter: str


# -- datasources -----------------------------------------------------------------------------------------
class ValidateDatasourceCredentials(ActionData):
    provider: str
    credentials: Mapping


class DatasourceAccess(ActionData):
    provider: str
    datasource: str
    credentials: Mapping


class WebsiteCrawl(DatasourceAccess):
    datasource_parameters: Mapping


class OnlineDocumentPages(DatasourceAccess):
    datasource_parameters: Mapping


class OnlineDocumentPageContent(DatasourceAccess):
    page: Mapping = Field(description="workspace_id, page_id, type")


class OnlineDriveBrowseFiles(DatasourceAccess):
    request: Mapping = Field(description="bucket, prefix, max_keys, next_page_parameters")


class OnlineDriveDownloadFile(DatasourceAccess):
    request: Mapping = Field(description="bucket, id")


# -- triggers ------------------------------------------------------------------------------------------------
class InvokeTriggerEvent(ActionData):
    provider: str
    event: str
    credentials: Mapping
    credential_type: CredentialType = "api-key"
    subscription: Mapping = Field(description="expires_at, endpoint, parameters, properties")
    raw_http_request: str
    parameters: Mapping
    payload: Mapping = Field(default_factory=dict, description="what dispatch_event decoded from the webhook")


class ValidateTriggerCredentials(ActionData):
    provider: str
    credentials: Mapping


class DispatchTriggerEvent(ActionData):
    provider: str
    subscription: Mapping
    credentials: Mapping | None
    credential_type: CredentialType | None
    raw_http_request: str


class SubscribeTrigger(ActionData):
    provider: str
    credentials: Mapping
    credential_type: CredentialType
    endpoint: str
    parameters: Mapping


class UnsubscribeTrigger(ActionData):
    provider: str
    subscription: Mapping
    credential_type: CredentialType
    credentials: Mapping


class RefreshTrigger(UnsubscribeTrigger):
    pass


ACTION_DATA: dict[str, type[ActionData]] = {
    "invoke_tool": InvokeTool,
    "validate_tool_credentials": ValidateToolCredentials,
    "get_tool_runtime_parameters": GetToolRuntimeParameters,
    "invoke_llm": InvokeLLM,
    "start_polling": StartPolling,
    "check_polling": CheckPolling,
    "get_llm_num_tokens": GetLLMNumTokens,
    "invoke_text_embedding": InvokeTextEmbedding,
    "invoke_multimodal_embedding": InvokeMultimodalEmbedding,
    "get_text_embedding_num_tokens": GetTextEmbeddingNumTokens,
    "invoke_rerank": InvokeRerank,
    "invoke_multimodal_rerank": InvokeMultimodalRerank,
    "invoke_tts": InvokeTTS,
    "get_tts_model_voices": GetTTSVoices,
    "invoke_speech2text": InvokeSpeech2Text,
    "invoke_moderation": InvokeModeration,
    "validate_provider_credentials": ValidateProviderCredentials,
    "validate_model_credentials": ValidateModelCredentials,
    "get_ai_model_schemas": GetAIModelSchemas,
    "invoke_agent_strategy": InvokeAgentStrategy,
    "get_authorization_url": GetAuthorizationUrl,
    "get_credentials": GetCredentials,
    "refresh_credentials": RefreshCredentials,
    "fetch_parameter_options": FetchParameterOptions,
    "validate_datasource_credentials": ValidateDatasourceCredentials,
    "invoke_website_datasource_get_crawl": WebsiteCrawl,
    "invoke_online_document_datasource_get_pages": OnlineDocumentPages,
    "invoke_online_document_datasource_get_page_content": OnlineDocumentPageContent,
    "invoke_online_drive_browse_files": OnlineDriveBrowseFiles,
    "invoke_online_drive_download_file": OnlineDriveDownloadFile,
    "invoke_trigger_event": InvokeTriggerEvent,
    "validate_trigger_credentials": ValidateTriggerCredentials,
    "dispatch_trigger_event": DispatchTriggerEvent,
    "subscribe_trigger": SubscribeTrigger,
    "unsubscribe_trigger": UnsubscribeTrigger,
    "refresh_trigger": RefreshTrigger,
}
"""The data model of each action but ``invoke_endpoint`` (endpoints are served at ``/e/…``, not dispatched)."""
