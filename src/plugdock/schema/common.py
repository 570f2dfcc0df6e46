"""Building blocks shared by every YAML kind: the base model, i18n text, options, credential fields."""

from __future__ import annotations

import re
from contextvars import ContextVar
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ModelWrapValidatorHandler, PrivateAttr, model_validator

VERSION_PATTERN = r"\d{1,4}(\.\d{1,4}){2}(-\w{1,16})?"
VERSION_RE = re.compile(f"^{VERSION_PATTERN}$")
AUTHOR_RE = re.compile(r"^[a-z0-9_-]{1,64}$")
PLUGIN_NAME_RE = re.compile(r"^[a-z0-9_-]{1,128}$")
IDENTITY_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]+$")

PluginTag = Literal[
    "search", "image", "videos", "weather", "finance", "design", "travel", "social", "news", "medical",
    "productivity", "education", "business", "entertainment", "utilities", "agent", "rag", "other", "trigger",
]

Version = Annotated[str, Field(pattern=f"^{VERSION_PATTERN}$", description="x.y.z, 1-4 digits each, optional -suffix")]


class DifyModel(BaseModel):
    """Base of every declaration model.

    Unknown fields are kept (``extra='allow'``) so that a round trip through plugdock loses nothing
    a newer Dify understands; numbers are accepted where Go's YAML decoder accepts them as text.
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True, coerce_numbers_to_str=True)

    # i18n fields that the official daemon reads leniently: a mapping without ``en_US`` (``help: {text: ...}``)
    # decodes there into empty text; plugdock leaves such a field out and warns instead of refusing the file.
    lenient_i18n: ClassVar[tuple[str, ...]] = ()
    # Set while a document is validated: each note as (id of the mapping its part was read from, path, message),
    # so a file whose validation fails elsewhere still reports them (see validate_document).
    note_sink: ClassVar[ContextVar[list[tuple[int, tuple[str | int, ...], str]] | None]] = \
        ContextVar("note_sink", default=None)
    _notes: list[tuple[tuple[str | int, ...], str]] = PrivateAttr(default_factory=list)
    _source: int | None = PrivateAttr(default=None)  # id() of the mapping this was read from, while validating

    def note(self, path: tuple[str | int, ...], message: str) -> None:
        """A warning about this declaration at ``path`` (relative to it); validation reports it with its line."""
        self._notes.append((path, message))
        sink = self.note_sink.get()
        if sink is not None and self._source is not None:
            sink.append((self._source, path, message))

    @property
    def notes(self) -> list[tuple[tuple[str | int, ...], str]]:
        return list(self._notes)

    @model_validator(mode="wrap")
    @classmethod
    def _lenient_fields(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        dropped = []
        if cls.lenient_i18n and isinstance(data, dict):
            dropped = [k for k in cls.lenient_i18n if isinstance(data.get(k), dict) and "en_US" not in data[k]]
        source = data
        if dropped:
            data = {k: v for k, v in data.items() if k not in dropped}
        model = handler(data)
        if isinstance(model, DifyModel) and cls.note_sink.get() is not None:
            model._source = id(source)  # the model's own after-validators note only once this returns
        for key in dropped:
            model.note((key,), f"{key} has no en_US text, so it is left out; the official daemon reads it as "
                               f"empty text (write {key}: {{en_US: ...}})")
        return model

    def to_data(self) -> dict[str, Any]:
        """The declaration as plain data, exactly the fields the author wrote (plus kept extras)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class I18nObject(DifyModel):
    """Text in several languages; ``en_US`` is the one every consumer falls back to."""

    en_US: str = Field(min_length=1, max_length=1023)
    zh_Hans: str | None = Field(default=None, max_length=1023)
    ja_JP: str | None = Field(default=None, max_length=1023)
    pt_BR: str | None = Field(default=None, max_length=1023)


class ParameterOption(DifyModel):
    value: str
    label: I18nObject
    icon: str | None = None


ModelScope = Literal[
    "all", "llm", "text-embedding", "rerank", "tts", "speech2text", "moderation", "vision", "document", "tool-call"
]
APP_SCOPES = {"all", "chat", "workflow", "completion"}
MODEL_SCOPES = {
    "llm", "text-embedding", "rerank", "tts", "speech2text", "moderation", "vision", "document", "tool-call",
}
ANY_SCOPES = {"string", "number", "object", "array[number]", "array[string]", "array[object]", "array[file]"}


def check_scope(kind: str, scope: str | None) -> None:
    """Scopes narrow selector fields; the daemon accepts ``a&b`` lists where any part is known."""
    if scope is None:
        return
    allowed = {"app-selector": APP_SCOPES, "model-selector": MODEL_SCOPES, "any": ANY_SCOPES}.get(kind)
    if allowed is None:
        raise ValueError(f"scope is only allowed for app-selector, model-selector and any (type is {kind!r})")
    parts = [p.strip() for p in scope.split("&")]
    if not any(p in allowed for p in parts):
        raise ValueError(f"scope {scope!r} is not valid for {kind}; use one of {', '.join(sorted(allowed))}")


def identity_name(value: str) -> str:
    """``identity.name`` of a provider, tool, datasource or event (the daemon's ``^[a-zA-Z0-9_-]+$``)."""
    if not IDENTITY_NAME_RE.match(value):
        raise ValueError(f"name {value!r} must match ^[a-zA-Z0-9_-]+$")
    return value


def check_bounds(low: float | None, high: float | None) -> None:
    if low is not None and high is not None and low > high:
        raise ValueError(f"min ({low}) is greater than max ({high})")


def check_parameter(kind: str, scope: str | None, options: list[Any] | None, low: float | None,
                    high: float | None) -> None:
    """What a tool or datasource parameter must hold together: a scope its type allows, options for a select,
    min not above max."""
    check_scope(kind, scope)
    if kind == "select" and not options:
        raise ValueError("a select parameter needs options")
    check_bounds(low, high)


ProviderConfigType = Literal[
    "secret-input", "text-input", "select", "boolean", "model-selector", "app-selector", "array[tools]"
]


class ProviderConfig(DifyModel):
    """One credential (tool providers) or setting (endpoint groups) field."""

    lenient_i18n = ("help",)
    name: str | None = Field(default=None, min_length=1, max_length=1023)
    type: ProviderConfigType
    scope: str | None = None
    required: bool = False
    default: str | int | float | bool | None = None
    options: list[ParameterOption] | None = Field(default=None, max_length=127)
    multiple: bool | None = None
    label: I18nObject
    help: I18nObject | None = None
    url: str | None = None
    placeholder: I18nObject | None = None

    @model_validator(mode="after")
    def _scope_fits_type(self) -> ProviderConfig:
        check_scope(self.type, self.scope)
        if self.type == "select" and not self.options:
            raise ValueError("a select field needs options")
        return self


class PythonExtra(DifyModel):
    source: str | None = None
    provider_source: str | None = None
    model_sources: list[str] | None = None


class Extra(DifyModel):
    """``extra.python`` names the Python files that implement a declaration."""

    python: PythonExtra | None = None


class PythonSource(DifyModel):
    source: str = Field(min_length=1)


class SourceExtra(DifyModel):
    """``extra.python.source`` required: the official SDK cannot load a datasource or trigger declaration (provider,
    datasource, event) without it."""

    python: PythonSource
