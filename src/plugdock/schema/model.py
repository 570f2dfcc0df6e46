"""Model provider YAML (predefined or customizable models), model YAML and ``_position.yaml``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, model_validator

from plugdock.schema.common import DifyModel, Extra, I18nObject, check_bounds
from plugdock.schema.model_templates import PARAMETER_RULE_TEMPLATES, resolve_parameter_rule

ModelType = Literal[
    "llm", "text-embedding", "rerank", "speech2text", "moderation", "tts", "text2img",
    "multimodal-embedding", "multimodal-rerank",
]
ConfigurateMethod = Literal["predefined-model", "customizable-model"]
ParameterRuleType = Literal["float", "int", "string", "boolean", "text"]
FormType = Literal["text-input", "secret-input", "select", "radio", "switch"]

# Keys of the ``models:`` mapping in a provider file; the values point at model YAML globs.
MODEL_TYPE_KEYS = ("llm", "text_embedding", "rerank", "tts", "speech2text", "moderation")

# ``use_template`` names the official daemon knows, with its texts; a rule using one needs no label or type of its
# own. One table for the daemon's resolution and the plugin runtime's schemas (see model_templates).
PARAMETER_TEMPLATES: dict[str, dict[str, Any]] = PARAMETER_RULE_TEMPLATES


class ParameterRule(DifyModel):
    """One tunable parameter of a model, written out or taken from a ``use_template``."""

    lenient_i18n = ("help",)
    name: str = Field(min_length=1, max_length=255)
    use_template: str | None = Field(default=None, max_length=255)
    label: I18nObject | None = None
    type: ParameterRuleType | None = None
    help: I18nObject | None = None
    required: bool = False
    default: str | int | float | bool | None = None
    min: float | None = None
    max: float | None = None
    precision: int | None = None
    options: list[str] | None = None

    @model_validator(mode="after")
    def _template_or_explicit(self) -> ParameterRule:
        if self.use_template:
            if self.use_template not in PARAMETER_TEMPLATES:
                known = ", ".join(PARAMETER_TEMPLATES)
                raise ValueError(f"use_template {self.use_template!r} is unknown; known templates: {known}")
        elif self.type is None:
            raise ValueError("a parameter rule without use_template needs a type")
        check_bounds(self.min, self.max)
        return self

    def resolved(self) -> dict[str, Any]:
        """The rule with its template filled in, as the daemon serves it to the host."""
        return resolve_parameter_rule(self.to_data())


class PriceConfig(DifyModel):
    input: Decimal
    output: Decimal | None = None
    unit: Decimal
    currency: str = Field(min_length=1)


class ModelDeclaration(DifyModel):
    """A model YAML file (``models/llm/<model>.yaml``) or a model returned by a customizable provider."""

    model: str = Field(min_length=1, max_length=255)
    label: I18nObject | None = None
    model_type: ModelType
    features: list[str] | None = Field(default=None, max_length=256)
    fetch_from: ConfigurateMethod | None = None
    model_properties: dict[str, Any] | None = None
    deprecated: bool = False
    parameter_rules: list[ParameterRule] | None = Field(default=None, max_length=128)
    pricing: PriceConfig | None = None

    @model_validator(mode="after")
    def _unique_rules(self) -> ModelDeclaration:
        names = [r.name for r in self.parameter_rules or []]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"parameter rule names must be unique; repeated: {', '.join(dupes)}")
        return self


class ShowOn(DifyModel):
    variable: str = Field(min_length=1, max_length=255)
    value: str = Field(min_length=1, max_length=255)


class FormOption(DifyModel):
    label: I18nObject
    value: str = Field(min_length=1, max_length=255)
    show_on: list[ShowOn] | None = Field(default=None, max_length=16)


class CredentialFormSchema(DifyModel):
    lenient_i18n = ("help",)

    variable: str = Field(min_length=1, max_length=255)
    label: I18nObject
    type: FormType
    required: bool = False
    default: str | None = Field(default=None, max_length=255)
    options: list[FormOption] | None = Field(default=None, max_length=128)
    help: I18nObject | None = None
    url: str | None = None
    placeholder: I18nObject | None = None
    max_length: int = 0
    show_on: list[ShowOn] | None = Field(default=None, max_length=16)

    @model_validator(mode="after")
    def _options_for_choices(self) -> CredentialFormSchema:
        if self.type in ("select", "radio") and not self.options:
            raise ValueError(f"a {self.type} field needs options")
        return self


# The official entities' ``lte=32``: a validate tag, which the official daemon applies only to remote debugging.
MAX_CREDENTIAL_FORMS = 32


def _many_forms(model: DifyModel, forms: list[CredentialFormSchema] | None) -> None:
    if forms and len(forms) > MAX_CREDENTIAL_FORMS:
        model.note(("credential_form_schemas",), f"{len(forms)} credential_form_schemas, over the official "
                   f"{MAX_CREDENTIAL_FORMS}; the official daemon installs the package but refuses the declaration "
                   "from a remote-debugging plugin")


class ProviderCredentialSchema(DifyModel):
    credential_form_schemas: list[CredentialFormSchema] | None = None

    @model_validator(mode="after")
    def _count(self) -> ProviderCredentialSchema:
        _many_forms(self, self.credential_form_schemas)
        return self


class FieldModelSchema(DifyModel):
    label: I18nObject
    placeholder: I18nObject | None = None


class ModelCredentialSchema(DifyModel):
    model: FieldModelSchema
    credential_form_schemas: list[CredentialFormSchema] | None = None

    @model_validator(mode="after")
    def _count(self) -> ModelCredentialSchema:
        _many_forms(self, self.credential_form_schemas)
        return self


class ProviderHelp(DifyModel):
    title: I18nObject
    url: I18nObject


class ModelTypeFiles(DifyModel):
    """Under ``models.<type>``: globs of predefined model files and the ordering file."""

    predefined: list[str] | None = None
    position: str | None = None


class ModelFileRefs(DifyModel):
    llm: ModelTypeFiles | None = None
    text_embedding: ModelTypeFiles | None = None
    rerank: ModelTypeFiles | None = None
    tts: ModelTypeFiles | None = None
    speech2text: ModelTypeFiles | None = None
    moderation: ModelTypeFiles | None = None


class ModelProviderDeclaration(DifyModel):
    """A model provider YAML file."""

    provider: str = Field(min_length=1, max_length=255)
    label: I18nObject
    description: I18nObject | None = None
    icon_small: I18nObject | None = None
    icon_large: I18nObject | None = None
    icon_small_dark: I18nObject | None = None
    icon_large_dark: I18nObject | None = None
    background: str | None = None
    help: ProviderHelp | None = None
    supported_model_types: list[ModelType] = Field(min_length=1, max_length=16)
    configurate_methods: list[ConfigurateMethod] = Field(min_length=1, max_length=16)
    provider_credential_schema: ProviderCredentialSchema | None = None
    model_credential_schema: ModelCredentialSchema | None = None
    models: ModelFileRefs | list[ModelDeclaration] | None = None
    position: dict[str, list[str]] | None = None
    extra: Extra | None = None

    @model_validator(mode="after")
    def _schemas_for_methods(self) -> ModelProviderDeclaration:
        if "customizable-model" in self.configurate_methods and self.model_credential_schema is None:
            raise ValueError("configurate_methods has customizable-model, so model_credential_schema is required")
        return self

    def icon_files(self) -> list[tuple[str, str]]:
        """(field path, file name) of every icon this provider names."""
        out = []
        for field_name in ("icon_small", "icon_large", "icon_small_dark", "icon_large_dark"):
            icon = getattr(self, field_name)
            if icon is None:
                continue
            for lang, value in icon.to_data().items():
                if isinstance(value, str) and value:
                    out.append((f"{field_name}.{lang}", value))
        return out
