"""Agent-strategy provider YAML and strategy YAML."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from plugdock.schema.common import DifyModel, Extra, I18nObject, ParameterOption, check_scope
from plugdock.schema.tool import ParameterAutoGenerate, ParameterTemplate, ToolIdentity, ToolProviderIdentity

AgentParameterType = Literal[
    "string", "number", "boolean", "select", "secret-input", "file", "files", "app-selector", "model-selector",
    "array[tools]", "any",
]


class AgentStrategyParameter(DifyModel):
    lenient_i18n = ("help",)
    name: str = Field(min_length=1, max_length=1023)
    label: I18nObject
    help: I18nObject | None = None
    type: AgentParameterType
    auto_generate: ParameterAutoGenerate | None = None
    template: ParameterTemplate | None = None
    scope: str | None = Field(default=None, max_length=1024)
    required: bool = False
    default: str | int | float | bool | None = None
    min: float | None = None
    max: float | None = None
    precision: int | None = None
    options: list[ParameterOption] | None = None

    @model_validator(mode="after")
    def _scope_fits(self) -> AgentStrategyParameter:
        if self.type != "array[tools]":
            check_scope(self.type, self.scope)
        return self


class AgentStrategyDeclaration(DifyModel):
    identity: ToolIdentity
    description: I18nObject
    parameters: list[AgentStrategyParameter] | None = None
    output_schema: dict[str, Any] | None = None
    features: list[str] | None = None
    extra: Extra | None = None


class AgentStrategyProviderDeclaration(DifyModel):
    identity: ToolProviderIdentity
    strategies: list[str | AgentStrategyDeclaration] = Field(default_factory=list)
    extra: Extra | None = None

    @property
    def strategy_files(self) -> list[str]:
        return [s for s in self.strategies if isinstance(s, str)]
