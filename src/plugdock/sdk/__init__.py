"""The plugin author API: ``from plugdock.sdk import Plugin, Tool, ToolProvider, ...``.

Names load on first use (PEP 562), so a tool plugin never imports the model entities or pydantic.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Plugin": "plugdock.sdk.plugin",
    "DifyPluginEnv": "plugdock.sdk.config",
    "InstallMethod": "plugdock.sdk.config",
    "Tool": "plugdock.sdk.tool",
    "ToolProvider": "plugdock.sdk.tool",
    "ToolRuntime": "plugdock.sdk.tool",
    "ToolSelector": "plugdock.sdk.tool",
    "ToolOAuthCredentials": "plugdock.sdk.tool",
    "OAuthCredentials": "plugdock.sdk.tool",
    "CredentialType": "plugdock.sdk.tool",
    "ToolInvokeMessage": "plugdock.sdk.messages",
    "AgentInvokeMessage": "plugdock.sdk.messages",
    "InvokeMessage": "plugdock.sdk.messages",
    "LogMetadata": "plugdock.sdk.messages",
    "I18nObject": "plugdock.sdk.entities",
    "ParameterOption": "plugdock.sdk.entities",
    "File": "plugdock.sdk.file",
    "FileType": "plugdock.sdk.file",
    "Endpoint": "plugdock.sdk.endpoint",
    "AgentStrategy": "plugdock.sdk.agent",
    "AgentStrategyProvider": "plugdock.sdk.agent",
    "AgentProvider": "plugdock.sdk.agent",
    "AgentRuntime": "plugdock.sdk.agent",
    "Session": "plugdock.sdk.session",
    "ModelProvider": "plugdock.sdk.model.provider",
    "LargeLanguageModel": "plugdock.sdk.model.llm",
    "TextEmbeddingModel": "plugdock.sdk.model.kinds",
    "RerankModel": "plugdock.sdk.model.kinds",
    "TTSModel": "plugdock.sdk.model.kinds",
    "Speech2TextModel": "plugdock.sdk.model.kinds",
    "ModerationModel": "plugdock.sdk.model.kinds",
    **{name: "plugdock.sdk.datasource" for name in (
        "DatasourceProvider", "WebsiteCrawlDatasource", "OnlineDocumentDatasource", "OnlineDriveDatasource")},
    **{name: "plugdock.sdk.datasource_entities" for name in (
        "DatasourceMessage", "DatasourceRuntime", "DatasourceOAuthCredentials", "WebSiteInfo", "WebSiteInfoDetail",
        "WebsiteCrawlMessage", "OnlineDocumentPage", "OnlineDocumentInfo", "DatasourceGetPagesResponse",
        "GetOnlineDocumentPageContentRequest", "OnlineDriveFile", "OnlineDriveFileBucket",
        "OnlineDriveBrowseFilesRequest", "OnlineDriveBrowseFilesResponse", "OnlineDriveDownloadFileRequest")},
    "Trigger": "plugdock.sdk.trigger",
    "TriggerSubscriptionConstructor": "plugdock.sdk.trigger",
    "Event": "plugdock.sdk.trigger",
    "EventDispatch": "plugdock.sdk.trigger_entities",
    "Subscription": "plugdock.sdk.trigger_entities",
    "UnsubscribeResult": "plugdock.sdk.trigger_entities",
    "Variables": "plugdock.sdk.trigger_entities",
    "TriggerOAuthCredentials": "plugdock.sdk.trigger_entities",
    "TriggerRuntime": "plugdock.sdk.trigger_entities",
    "EventRuntime": "plugdock.sdk.trigger_entities",
    "TriggerSubscriptionConstructorRuntime": "plugdock.sdk.trigger_entities",
    "TriggerError": "plugdock.sdk.trigger_entities",
    "SubscriptionError": "plugdock.sdk.trigger_entities",
    "UnsubscribeError": "plugdock.sdk.trigger_entities",
    "TriggerValidationError": "plugdock.sdk.trigger_entities",
    "TriggerProviderCredentialValidationError": "plugdock.sdk.trigger_entities",
    "TriggerDispatchError": "plugdock.sdk.trigger_entities",
    "TriggerProviderOAuthError": "plugdock.sdk.trigger_entities",
    "EventIgnoreError": "plugdock.sdk.trigger_entities",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'plugdock.sdk' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
