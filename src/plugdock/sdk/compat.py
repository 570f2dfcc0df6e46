"""Where each public name lives in plugdock and in the official ``dify_plugin`` SDK.

``port_source`` rewrites a module's imports from one SDK to the other; ``plugdock port`` uses it to
move an official-SDK plugin to plugdock (and the conformance tests use it the other way round).
"""

from __future__ import annotations

import ast

_OFFICIAL: dict[str, tuple[str, ...]] = {
    "dify_plugin": (
        "DifyPluginEnv", "Plugin", "Tool", "ToolProvider", "Endpoint", "AgentStrategy", "AgentProvider",
        "ModelProvider", "LargeLanguageModel", "TextEmbeddingModel", "RerankModel", "TTSModel", "Speech2TextModel",
        "ModerationModel", "File",
    ),
    "dify_plugin.config.config": ("InstallMethod",),
    "dify_plugin.entities": ("ParameterOption",),
    "dify_plugin.entities.tool": ("ToolInvokeMessage", "ToolRuntime", "ToolSelector"),
    "dify_plugin.entities.invoke_message": ("InvokeMessage",),
    "dify_plugin.entities.agent": ("AgentInvokeMessage", "AgentRuntime"),
    "dify_plugin.entities.oauth": ("ToolOAuthCredentials", "OAuthCredentials", "TriggerOAuthCredentials"),
    "dify_plugin.entities.provider_config": ("CredentialType", "LogMetadata"),
    "dify_plugin.file.entities": ("FileType",),
    "dify_plugin.core.runtime": ("Session",),
    "dify_plugin.errors.tool": ("ToolProviderCredentialValidationError", "ToolProviderOAuthError",
                                "DatasourceCredentialValidationError", "DatasourceOAuthError"),
    "dify_plugin.errors.model": (
        "CredentialsValidateFailedError", "InvokeError", "InvokeConnectionError", "InvokeServerUnavailableError",
        "InvokeRateLimitError", "InvokeAuthorizationError", "InvokeBadRequestError",
    ),
    "dify_plugin.entities.model.message": (
        "PromptMessage", "PromptMessageRole", "PromptMessageTool", "PromptMessageFunction", "PromptMessageContent",
        "PromptMessageContentType", "TextPromptMessageContent", "ImagePromptMessageContent",
        "AudioPromptMessageContent", "VideoPromptMessageContent", "DocumentPromptMessageContent",
        "UserPromptMessage", "AssistantPromptMessage", "SystemPromptMessage", "DeveloperPromptMessage",
        "ToolPromptMessage",
    ),
    "dify_plugin.entities.model.llm": (
        "LLMMode", "LLMUsage", "LLMResult", "LLMResultChunk", "LLMResultChunkDelta", "LLMModelConfig",
        "LLMStructuredOutput", "LLMResultWithStructuredOutput", "LLMResultChunkWithStructuredOutput",
        "SummaryResult", "NumTokensResult",
    ),
    "dify_plugin.entities.model": (
        "AIModelEntity", "ModelType", "FetchFrom", "ModelFeature", "ModelPropertyKey", "ParameterRule",
        "ParameterType", "PriceConfig", "PriceInfo", "PriceType", "ProviderModel", "DefaultParameterName",
        "EmbeddingInputType", "BaseModelConfig", "ModelUsage",
    ),
    "dify_plugin.entities.model.text_embedding": (
        "TextEmbeddingResult", "EmbeddingUsage", "TextEmbeddingModelConfig", "MultiModalContent",
        "MultiModalContentType", "MultiModalEmbeddingResult",
    ),
    "dify_plugin.entities.model.rerank": ("RerankDocument", "RerankResult", "RerankModelConfig",
                                          "MultiModalRerankResult"),
    "dify_plugin.entities.model.tts": ("TTSModelConfig", "TTSResult"),
    "dify_plugin.entities.model.speech2text": ("Speech2TextModelConfig", "Speech2TextResult"),
    "dify_plugin.entities.model.moderation": ("ModerationModelConfig", "ModerationResult"),
    "dify_plugin.interfaces.model.ai_model": ("AIModel",),
    "dify_plugin.interfaces.datasource": ("DatasourceProvider",),
    "dify_plugin.interfaces.datasource.website": ("WebsiteCrawlDatasource",),
    "dify_plugin.interfaces.datasource.online_document": ("OnlineDocumentDatasource",),
    "dify_plugin.interfaces.datasource.online_drive": ("OnlineDriveDatasource",),
    "dify_plugin.interfaces.trigger": (
        "Trigger", "TriggerSubscriptionConstructor", "Event", "TriggerRuntime", "EventRuntime",
    ),
    "dify_plugin.entities.trigger": (
        "EventDispatch", "Subscription", "UnsubscribeResult", "Variables", "TriggerSubscriptionConstructorRuntime",
    ),
    "dify_plugin.errors.trigger": (
        "TriggerError", "SubscriptionError", "UnsubscribeError", "TriggerValidationError",
        "TriggerProviderCredentialValidationError", "TriggerDispatchError", "TriggerProviderOAuthError",
        "EventIgnoreError",
    ),
    "dify_plugin.entities.datasource": (
        "DatasourceMessage", "DatasourceRuntime", "DatasourceOAuthCredentials", "WebSiteInfo", "WebSiteInfoDetail",
        "WebsiteCrawlMessage", "OnlineDocumentPage", "OnlineDocumentInfo", "DatasourceGetPagesResponse",
        "GetOnlineDocumentPageContentRequest", "OnlineDriveFile", "OnlineDriveFileBucket",
        "OnlineDriveBrowseFilesRequest", "OnlineDriveBrowseFilesResponse", "OnlineDriveDownloadFileRequest",
    ),
}

OFFICIAL_MODULE = {name: module for module, names in _OFFICIAL.items() for name in names}
_ERRORS = set(_OFFICIAL["dify_plugin.errors.tool"]) | set(_OFFICIAL["dify_plugin.errors.model"])
_MODEL_PREFIXES = ("dify_plugin.entities.model", "dify_plugin.interfaces.model.ai_model")
# ``I18nObject`` lives in both places; tools take the light one, model code the pydantic one
_EITHER = {"I18nObject"}


def plugdock_module(name: str, official_module: str | None = None) -> str:
    if name in _ERRORS:
        return "plugdock.sdk.errors"
    module = OFFICIAL_MODULE.get(name, official_module or "")
    if module.startswith(_MODEL_PREFIXES) or (name in _EITHER and (official_module or "").startswith(
            "dify_plugin.entities.model")):
        return "plugdock.sdk.model"
    if name == "AgentProvider":
        return "plugdock.sdk"
    return "plugdock.sdk"


def _official_module(name: str, plugdock_mod: str) -> str:
    if name in _EITHER:
        return "dify_plugin.entities.model" if plugdock_mod == "plugdock.sdk.model" else "dify_plugin.entities"
    if name == "AgentStrategyProvider":
        return "dify_plugin"
    return OFFICIAL_MODULE.get(name, "dify_plugin")


def port_source(text: str, *, to: str = "plugdock") -> tuple[str, list[str]]:
    """Rewrite imports of one SDK to the other; returns the new text and notes on what could not be mapped."""
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    notes: list[str] = []
    edits: list[tuple[int, int, str]] = []
    source_prefix = "dify_plugin" if to == "plugdock" else "plugdock.sdk"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == source_prefix.split(".")[0]
                                                for a in node.names):
            notes.append(f"line {node.lineno}: 'import {node.names[0].name}' is not rewritten; use from-imports")
        if not isinstance(node, ast.ImportFrom) or not node.module or not (
                node.module == source_prefix or node.module.startswith(source_prefix + ".")):
            continue
        groups: dict[str, list[str]] = {}
        for alias in node.names:
            if to == "plugdock":
                target = plugdock_module(alias.name, node.module)
                if alias.name not in OFFICIAL_MODULE and alias.name not in _EITHER:
                    notes.append(f"line {node.lineno}: {node.module}.{alias.name} has no known plugdock "
                                 f"counterpart; imported from {target}")
                local = alias.asname
            else:
                target = _official_module(alias.name, node.module)
                local = alias.asname or ("AgentStrategyProvider" if alias.name == "AgentStrategyProvider" else None)
            name = "AgentProvider" if to == "dify" and alias.name == "AgentStrategyProvider" else alias.name
            groups.setdefault(target, []).append(f"{name} as {local}" if local and local != name else name)
        indent = " " * node.col_offset
        replacement = "".join(f"{indent}from {module} import {', '.join(names)}\n" for module, names in groups.items())
        edits.append((node.lineno - 1, (node.end_lineno or node.lineno) - 1, replacement))
    for start, end, replacement in sorted(edits, reverse=True):
        lines[start : end + 1] = [replacement]
    return "".join(lines), notes
