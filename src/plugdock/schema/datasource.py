"""Datasource provider YAML and datasource YAML (knowledge-pipeline sources).

Field names, types and required-ness follow the official SDK's ``entities/datasource_manifest.py`` and the
official daemon's ``pkg/entities/plugin_entities/datasource_declaration.go``; where the two differ the
stricter rule wins, because a plugin must load in both: the daemon accepts only five parameter types
(the SDK also ``file``/``files``) and requires the provider icon and description, the SDK requires every
``extra.python.source``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from plugdock.schema.common import (
    DifyModel,
    I18nObject,
    ParameterOption,
    ProviderConfig,
    SourceExtra,
    check_parameter,
    identity_name,
)
from plugdock.schema.tool import (
    CredentialFields,
    OAuthSchema,
    ParameterAutoGenerate,
    ParameterTemplate,
    credential_list,
)

if TYPE_CHECKING:
    from plugdock.schema.yaml_source import Path, YamlDocument

# The official DatasourceProviderType / DatasourceType (SDK and daemon agree).
DatasourceProviderType = Literal["website_crawl", "online_document", "online_drive"]
# The SDK's DatasourceLabelEnum: the plugin tags without rag, agent and trigger (the SDK refuses to start on them).
DatasourceTag = Literal[
    "search", "image", "videos", "weather", "finance", "design", "travel", "social", "news", "medical",
    "productivity", "education", "business", "entertainment", "utilities", "other",
]
# The daemon's isDatasourceParameterType: the SDK's list without file and files, which the daemon refuses.
DatasourceParameterType = Literal["string", "number", "boolean", "select", "secret-input"]


class DatasourceParameter(DifyModel):
    """One input of a datasource, filled by the user in the knowledge pipeline."""

    name: str = Field(min_length=1, max_length=1023)
    label: I18nObject
    type: DatasourceParameterType
    description: I18nObject
    placeholder: I18nObject | None = None
    scope: str | None = Field(default=None, max_length=1024)
    required: bool = False
    auto_generate: ParameterAutoGenerate | None = None
    template: ParameterTemplate | None = None
    default: float | int | str | bool | None = None
    min: float | None = None
    max: float | None = None
    precision: int | None = None
    options: list[ParameterOption] | None = None

    @field_validator("type", mode="before")
    @classmethod
    def _known_type(cls, value: Any) -> Any:
        if value in ("file", "files"):
            raise ValueError(f"type {value!r} is accepted by the official SDK but refused by the official daemon "
                             "(isDatasourceParameterType); use string, number, boolean, select or secret-input")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> DatasourceParameter:
        check_parameter(self.type, self.scope, self.options, self.min, self.max)
        return self


class DatasourceIdentity(DifyModel):
    author: str = Field(min_length=1)
    name: str = Field(min_length=1)
    label: I18nObject
    icon: str | None = None

    _check_name = field_validator("name")(identity_name)


class DatasourceDeclaration(DifyModel):
    """A datasource YAML file (``datasources/<name>.yaml``)."""

    identity: DatasourceIdentity
    description: I18nObject
    parameters: list[DatasourceParameter] | None = None
    output_schema: dict[str, Any] | None = None
    extra: SourceExtra

    @model_validator(mode="after")
    def _parameters_rules(self) -> DatasourceDeclaration:
        if "parameters" not in self.model_fields_set:
            self.note(("parameters",), "no parameters key; the official daemon's validator requires it "
                                       "(write parameters: [] when the datasource takes none)")
        names = [p.name for p in self.parameters or []]
        for index, name in enumerate(names):
            if name in names[:index]:
                self.note(("parameters", index, "name"), f"parameter {name!r} repeats parameters"
                                                         f"[{names.index(name)}]; rename or remove one")
        return self


class DatasourceProviderIdentity(DifyModel):
    author: str = Field(min_length=1)
    name: str = Field(min_length=1)
    description: I18nObject
    icon: str = Field(min_length=1)
    label: I18nObject
    tags: list[DatasourceTag] | None = Field(default=None, description="the official SDK's DatasourceLabelEnum")

    _check_name = field_validator("name")(identity_name)


class DatasourceProviderDeclaration(DifyModel):
    """A datasource provider YAML file: identity, provider type, credentials, OAuth and the datasource files."""

    identity: DatasourceProviderIdentity
    provider_type: DatasourceProviderType
    credentials_schema: CredentialFields | None = None
    oauth_schema: OAuthSchema | None = None
    datasources: list[str] = Field(default_factory=list, description="paths of the datasource YAML files")
    extra: SourceExtra

    @field_validator("datasources", mode="before")
    @classmethod
    def _files_only(cls, value: Any) -> Any:
        if isinstance(value, list) and any(not isinstance(item, str) for item in value):
            raise ValueError("datasources must be a list of file paths: the official SDK loads each from its "
                             "own YAML file and refuses inline datasources ('datasource path should be a string')")
        return value

    @property
    def credential_fields(self) -> list[ProviderConfig]:
        return credential_list(self.credentials_schema)


def load_datasource_provider(loader: Any, path: str, mdoc: YamlDocument, ref: Path) -> None:
    """The loader's walk for ``plugins.datasources``: the provider file, each datasource file, their sources.

    ``loader`` is :mod:`plugdock.schema.plugin`'s walker (not imported: that module imports this one).
    """
    doc = loader.document(path, mdoc, ref, "datasource provider")
    provider = loader.model(DatasourceProviderDeclaration, doc) if doc else None
    if doc is None or provider is None:
        return
    result = loader.result
    result.datasource_provider = provider
    result.files["datasource_provider"] = path
    loader.python_source(doc, ("extra", "python", "source"), provider.extra.python.source, "a datasource provider",
                         True)
    if f"_assets/{provider.identity.icon}" not in loader.all_files:
        loader.ref_problem(doc, ("identity", "icon"), f"icon {provider.identity.icon!r} is not in _assets/ (the "
                           "official daemon refuses the package: 'datasource icon not found')")
    for index, item in enumerate(provider.datasources):
        ddoc = loader.document(item, doc, ("datasources", index), "datasource")
        datasource = loader.model(DatasourceDeclaration, ddoc) if ddoc else None
        if ddoc is None or datasource is None:
            continue
        loader.python_source(ddoc, ("extra", "python", "source"), datasource.extra.python.source, "a datasource", True)
        result.datasources.append(datasource)
        result.files[f"datasource:{datasource.identity.name}"] = item
    names = [d.identity.name for d in result.datasources]
    for name in sorted({n for n in names if names.count(n) > 1}):
        loader.ref_problem(doc, ("datasources",), f"datasource name {name!r} is declared more than once")
    if not provider.datasources:
        loader.ref_problem(doc, ("datasources",), "the provider declares no datasources, so no pipeline can use it",
                           severity="warning")


def datasource_declaration(provider: DatasourceProviderDeclaration,
                           datasources: list[DatasourceDeclaration]) -> dict[str, Any]:
    """The official DatasourceProviderDeclaration JSON: the struct's fields only (no ``extra``, ``help``, or a
    datasource's own ``provider_type``), credentials as a list, tags and lists never null, ``oauth_schema`` null
    when absent, the datasource files inlined."""
    written = provider.to_data()
    data: dict[str, Any] = {key: written.get(key) for key in ("identity", "oauth_schema", "provider_type")}
    data["identity"] = {"tags": [], **written["identity"]}
    data["credentials_schema"] = [f.to_data() for f in provider.credential_fields]
    items = []
    for datasource in datasources:
        item = {key: value for key, value in datasource.to_data().items()
                if key in ("identity", "description", "output_schema")}
        item["parameters"] = [p.to_data() for p in datasource.parameters or []]
        items.append(item)
    data["datasources"] = items
    return data
