"""Plugin declaration formats (manifest, providers, tools, models, endpoints, strategies, bundles).

Defined once as pydantic v2 models and shared by the SDK, the CLI and the daemon.
"""

from pydantic import BaseModel

from plugdock.schema.agent import AgentStrategyDeclaration, AgentStrategyProviderDeclaration
from plugdock.schema.bundle import BundleManifest
from plugdock.schema.common import I18nObject, ProviderConfig
from plugdock.schema.datasource import DatasourceDeclaration, DatasourceProviderDeclaration
from plugdock.schema.endpoint import EndpointDeclaration, EndpointProviderDeclaration
from plugdock.schema.manifest import PluginManifest
from plugdock.schema.model import ModelDeclaration, ModelProviderDeclaration
from plugdock.schema.plugin import DirectorySource, FileSource, LoadedPlugin, load_plugin
from plugdock.schema.problems import Problem
from plugdock.schema.tool import ToolDeclaration, ToolProviderDeclaration
from plugdock.schema.trigger import EventDeclaration, TriggerProviderDeclaration

# The YAML kinds ``plugdock schema --kind`` can print, by name.
KINDS: dict[str, type[BaseModel]] = {
    "manifest": PluginManifest,
    "tool_provider": ToolProviderDeclaration,
    "tool": ToolDeclaration,
    "model_provider": ModelProviderDeclaration,
    "model": ModelDeclaration,
    "endpoint_group": EndpointProviderDeclaration,
    "endpoint": EndpointDeclaration,
    "agent_provider": AgentStrategyProviderDeclaration,
    "agent_strategy": AgentStrategyDeclaration,
    "bundle": BundleManifest,
    "datasource_provider": DatasourceProviderDeclaration,
    "datasource": DatasourceDeclaration,
    "trigger_provider": TriggerProviderDeclaration,
    "event": EventDeclaration,
}

__all__ = [
    "KINDS",
    "AgentStrategyDeclaration",
    "AgentStrategyProviderDeclaration",
    "BundleManifest",
    "DatasourceDeclaration",
    "DatasourceProviderDeclaration",
    "DirectorySource",
    "EndpointDeclaration",
    "EndpointProviderDeclaration",
    "EventDeclaration",
    "FileSource",
    "I18nObject",
    "LoadedPlugin",
    "ModelDeclaration",
    "ModelProviderDeclaration",
    "PluginManifest",
    "Problem",
    "ProviderConfig",
    "ToolDeclaration",
    "ToolProviderDeclaration",
    "TriggerProviderDeclaration",
    "load_plugin",
]
