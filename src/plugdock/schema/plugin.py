"""Load a whole plugin: follow ``manifest.yaml`` to every provider, tool, model, endpoint and strategy file.

The loader never stops at the first problem: it collects all of them (with file, line and field)
and returns whatever it could build. The same loader serves ``plugdock validate``, packaging, the
plugin runtime and the daemon, so every part agrees on what a valid plugin is.
"""

from __future__ import annotations

import fnmatch
import posixpath
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from plugdock.schema.agent import AgentStrategyDeclaration, AgentStrategyProviderDeclaration
from plugdock.schema.datasource import DatasourceDeclaration, DatasourceProviderDeclaration, load_datasource_provider
from plugdock.schema.endpoint import EndpointDeclaration, EndpointProviderDeclaration
from plugdock.schema.manifest import PluginManifest
from plugdock.schema.model import MODEL_TYPE_KEYS, ModelDeclaration, ModelFileRefs, ModelProviderDeclaration
from plugdock.schema.problems import Problem
from plugdock.schema.python_check import check_sources
from plugdock.schema.sources import DirectorySource, FileSource, is_safe_relative
from plugdock.schema.tool import ToolDeclaration, ToolProviderDeclaration
from plugdock.schema.trigger import EventDeclaration, TriggerProviderDeclaration, class_bases
from plugdock.schema.unlisted_tools import unlisted_tool_problems
from plugdock.schema.validation import validate_document
from plugdock.schema.yaml_source import Path, YamlDocument, load_yaml

M = TypeVar("M", bound=BaseModel)

__all__ = ["DirectorySource", "FileSource", "LoadedPlugin", "is_safe_relative", "load_plugin"]


@dataclass
class LoadedPlugin:
    """Everything a plugin declares, validated, with the file each part came from."""

    manifest: PluginManifest | None = None
    tool_provider: ToolProviderDeclaration | None = None
    tools: list[ToolDeclaration] = field(default_factory=list)
    model_provider: ModelProviderDeclaration | None = None
    models: list[ModelDeclaration] = field(default_factory=list)
    positions: dict[str, list[str]] = field(default_factory=dict)
    endpoint_group: EndpointProviderDeclaration | None = None
    endpoints: list[EndpointDeclaration] = field(default_factory=list)
    agent_provider: AgentStrategyProviderDeclaration | None = None
    strategies: list[AgentStrategyDeclaration] = field(default_factory=list)
    trigger_provider: TriggerProviderDeclaration | None = None
    events: list[EventDeclaration] = field(default_factory=list)
    datasource_provider: DatasourceProviderDeclaration | None = None
    datasources: list[DatasourceDeclaration] = field(default_factory=list)
    raw_providers: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    python_sources: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    @property
    def ok(self) -> bool:
        return self.manifest is not None and not self.errors


class _Loader:
    def __init__(self, source: FileSource) -> None:
        self.source = source
        self.result = LoadedPlugin()
        self.all_files = set(source.files())
        self.tool_lists: dict[str, set[str]] = {}  # each valid tool provider's file -> the tool files it lists

    def add(self, problems: list[Problem]) -> None:
        self.result.problems.extend(problems)

    def document(self, path: str, doc_ref: YamlDocument | None, ref_path: Path, what: str) -> YamlDocument | None:
        """Read and parse a referenced YAML file; a bad reference is reported where it was written."""
        if not is_safe_relative(path):
            message = f"{what} path {path!r} must be relative to the plugin root, without '..'"
            self.ref_problem(doc_ref, ref_path, message)
            return None
        data = self.source.read(path)
        if data is None:
            self.ref_problem(doc_ref, ref_path, f"{what} file {path!r} does not exist in the plugin")
            return None
        doc = load_yaml(data, path)
        self.add(doc.problems)
        return doc if not [p for p in doc.problems if p.is_error] else None

    def ref_problem(self, doc: YamlDocument | None, path: Path, message: str, severity: str = "error") -> None:
        if doc is None:
            self.add([Problem(self.source.name, None, None, "", message, severity)])
        else:
            self.add([doc.problem(path, message, severity=severity)])

    def model(self, cls: type[M], doc: YamlDocument) -> M | None:
        model, problems = validate_document(cls, doc)
        self.add(problems)
        return model

    def unchecked(self, doc: YamlDocument | None, key: str, cls: type[BaseModel], what: str) -> None:
        """A provider that failed validation still names its files: check them too, so one run lists them all."""
        items = doc.data.get(key) if doc is not None and isinstance(doc.data, dict) else None
        for index, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, str) and (idoc := self.document(item, doc, (key, index), what)) is not None:
                self.model(cls, idoc)

    # -- the walk ---------------------------------------------------------------------------------
    def run(self) -> LoadedPlugin:
        doc = self.document("manifest.yaml", None, (), "manifest")
        if doc is None:
            return self.result
        if isinstance(doc.data, dict) and doc.data.get("type") == "bundle":
            self.ref_problem(doc, ("type",), "this is a bundle manifest; validate it as a bundle")
            return self.result
        manifest = self.model(PluginManifest, doc)
        self.result.manifest = manifest
        self.result.files["manifest"] = "manifest.yaml"
        if manifest is not None:
            self.manifest_rules(manifest, doc)
        refs = manifest.plugins if manifest is not None else _RawRefs(doc.data)  # one run: every file's problems
        for attr, loader in (
            ("tools", self.tool_provider), ("models", self.model_provider), ("endpoints", self.endpoint_group),
            ("agent_strategies", self.agent_provider), ("datasources", self.datasource_provider),
            ("triggers", self.trigger_provider),
        ):
            for index, path in enumerate(getattr(refs, attr) or []):
                loader(path, doc, ("plugins", attr, index), attr)
        if manifest is not None:
            self.assets_rules(manifest, doc)
            self.permission_rules(manifest, doc)
        self.unlisted_rules()
        self.source_rules()
        self.link_rules()
        return self.result

    def manifest_rules(self, manifest: PluginManifest, doc: YamlDocument) -> None:
        refs = manifest.plugins
        kinds = {k: getattr(refs, k) or [] for k in ("tools", "models", "endpoints", "agent_strategies",
                                                      "datasources", "triggers")}
        for kind, paths in kinds.items():
            if len(paths) > 1:
                self.ref_problem(doc, ("plugins", kind, 1),
                                 f"a plugin declares at most one {kind} provider; found {len(paths)}")
        present = [k for k, v in kinds.items() if v]
        if not present:
            self.ref_problem(doc, ("plugins",), "declare at least one of tools, models, endpoints, agent_strategies,"
                             " datasources or triggers")
        for exclusive in ("models", "agent_strategies", "datasources", "triggers"):
            if exclusive in present and len(present) > 1:
                others = ", ".join(k for k in present if k != exclusive)
                self.ref_problem(doc, ("plugins", exclusive),
                                 f"{exclusive} cannot be declared together with {others}")
        entry = manifest.meta.runner.entrypoint.replace(".", "/") + ".py"
        if entry not in self.all_files:
            self.ref_problem(doc, ("meta", "runner", "entrypoint"),
                             f"entrypoint {manifest.meta.runner.entrypoint!r} needs the file {entry!r}, "
                             "which is missing")
        else:
            self.result.python_sources.append(entry)

    def python_source(self, doc: YamlDocument, path: Path, value: str | None, what: str, required: bool) -> None:
        if not value:
            if required:
                self.ref_problem(doc, path, f"{what} needs extra.python.source naming its Python file")
            return
        if not is_safe_relative(value):
            self.ref_problem(doc, path, f"source path {value!r} must be relative to the plugin root, without '..'")
        elif not value.endswith(".py"):
            self.non_python_source(doc, path, value)
        elif value not in self.all_files:
            self.ref_problem(doc, path, f"Python source {value!r} does not exist in the plugin")
        elif value not in self.result.python_sources:
            self.result.python_sources.append(value)

    def non_python_source(self, doc: YamlDocument, path: Path, value: str) -> None:
        """The official SDK imports a source by module name (its path without the suffix), not by file."""
        module = posixpath.splitext(value)[0]
        stem = module + ".py"
        dotted = module.replace("/", ".")
        if stem in self.all_files:
            self.ref_problem(doc, path, f"source {value!r} is not a .py file; the official SDK imports the module "
                             f"{dotted!r} by name, which is {stem!r}: name that file", severity="warning")
            if stem not in self.result.python_sources:
                self.result.python_sources.append(stem)
        else:
            self.ref_problem(doc, path, f"source {value!r} is not a .py file, and {stem!r}, the module {dotted!r} "
                             "the official SDK would import, does not exist in the plugin")

    def tool_provider(self, path: str, mdoc: YamlDocument, ref: Path, _: str) -> None:
        doc = self.document(path, mdoc, ref, "tool provider")
        provider = self.model(ToolProviderDeclaration, doc) if doc else None
        if doc is None or provider is None:
            self.unchecked(doc, "tools", ToolDeclaration, "tool")
            return
        self.result.tool_provider = provider
        self.result.files["tool_provider"] = path
        self.tool_lists[path] = {posixpath.normpath(t) for t in provider.tools if isinstance(t, str)}
        self.python_source(doc, ("extra", "python", "source"), _source(provider.extra), "a tool provider", True)
        for index, item in enumerate(provider.tools):
            if isinstance(item, ToolDeclaration):
                self.result.tools.append(item)
                continue
            tdoc = self.document(item, doc, ("tools", index), "tool")
            tool = self.model(ToolDeclaration, tdoc) if tdoc else None
            if tdoc is None or tool is None:
                continue
            self.python_source(tdoc, ("extra", "python", "source"), _source(tool.extra), "a tool", True)
            self.result.tools.append(tool)
            self.result.files[f"tool:{tool.identity.name}"] = item
        names = [t.identity.name for t in self.result.tools]
        for name in sorted({n for n in names if names.count(n) > 1}):
            self.ref_problem(doc, ("tools",), f"tool name {name!r} is declared more than once")
        if not provider.tools:
            self.ref_problem(doc, ("tools",), "the provider declares no tools", severity="warning")

    def unlisted_rules(self) -> None:
        """Warn of a tool no provider lists (see :mod:`plugdock.schema.unlisted_tools`)."""
        loaded, declared = {posixpath.normpath(f) for f in self.result.files.values()}, self.result.tools
        self.add(unlisted_tool_problems(self.source, self.all_files, self.tool_lists, loaded, declared))

    def model_provider(self, path: str, mdoc: YamlDocument, ref: Path, _: str) -> None:
        doc = self.document(path, mdoc, ref, "model provider")
        provider = self.model(ModelProviderDeclaration, doc) if doc else None
        if doc is None or provider is None:
            return
        self.result.model_provider = provider
        self.result.files["model_provider"] = path
        extra = provider.extra.python if provider.extra else None
        self.python_source(doc, ("extra", "python", "provider_source"), extra.provider_source if extra else None,
                           "a model provider", True)
        for index, src in enumerate((extra.model_sources if extra else None) or []):
            self.python_source(doc, ("extra", "python", "model_sources", index), src, "a model", True)
        if isinstance(provider.models, list):
            self.result.models.extend(provider.models)
        elif isinstance(provider.models, ModelFileRefs):
            for key in MODEL_TYPE_KEYS:
                files = getattr(provider.models, key)
                if files is None:
                    continue
                self.model_files(doc, key, files.predefined or [])
                if files.position:
                    self.position_file(doc, key, files.position)
        if "predefined-model" in provider.configurate_methods and not self.result.models:
            self.ref_problem(doc, ("models",), "configurate_methods has predefined-model but no model files were found",
                             severity="warning")
        for index, model in enumerate(self.result.models):
            if model.model_type not in provider.supported_model_types:
                self.ref_problem(doc, ("supported_model_types",),
                                 f"model {model.model!r} (#{index + 1}) has type {model.model_type!r}, which is not in "
                                 f"supported_model_types", severity="warning")

    def model_files(self, doc: YamlDocument, key: str, patterns: list[str]) -> None:
        for index, pattern in enumerate(patterns):
            matched = [f for f in sorted(self.all_files)
                       if fnmatch.fnmatchcase(f, pattern) and "/" not in f[len(pattern.rsplit("/", 1)[0]) + 1:]
                       and not f.endswith("_position.yaml")]
            if not matched:
                self.ref_problem(doc, ("models", key, "predefined", index), f"no model file matches {pattern!r}; "
                                 "the official daemon loads no predefined models from it", severity="warning")
            for file in matched:
                mdoc = self.document(file, doc, ("models", key, "predefined", index), "model")
                model = self.model(ModelDeclaration, mdoc) if mdoc else None
                if model is not None:
                    self.result.models.append(model)
                    self.result.files[f"model:{model.model}"] = file

    def position_file(self, doc: YamlDocument, key: str, path: str) -> None:
        pdoc = self.document(path, doc, ("models", key, "position"), "position")
        if pdoc is None:
            return
        if not isinstance(pdoc.data, list) or not all(isinstance(x, str) for x in pdoc.data):
            self.ref_problem(pdoc, (), "a _position.yaml file must be a list of model names")
            return
        self.result.positions[key] = pdoc.data

    def endpoint_group(self, path: str, mdoc: YamlDocument, ref: Path, _: str) -> None:
        doc = self.document(path, mdoc, ref, "endpoint group")
        group = self.model(EndpointProviderDeclaration, doc) if doc else None
        if doc is None or group is None:
            self.unchecked(doc, "endpoints", EndpointDeclaration, "endpoint")
            return
        self.result.endpoint_group = group
        self.result.files["endpoint_group"] = path
        for index, item in enumerate(group.endpoints):
            if isinstance(item, EndpointDeclaration):
                self.result.endpoints.append(item)
                continue
            edoc = self.document(item, doc, ("endpoints", index), "endpoint")
            endpoint = self.model(EndpointDeclaration, edoc) if edoc else None
            if edoc is None or endpoint is None:
                continue
            self.python_source(edoc, ("extra", "python", "source"), _source(endpoint.extra), "an endpoint", True)
            self.result.endpoints.append(endpoint)
        routes = [(e.method, e.path) for e in self.result.endpoints]
        for method, route in sorted({r for r in routes if routes.count(r) > 1}):
            self.ref_problem(doc, ("endpoints",), f"endpoint {method} {route} is declared more than once")

    def agent_provider(self, path: str, mdoc: YamlDocument, ref: Path, _: str) -> None:
        doc = self.document(path, mdoc, ref, "agent strategy provider")
        provider = self.model(AgentStrategyProviderDeclaration, doc) if doc else None
        if doc is None or provider is None:
            self.unchecked(doc, "strategies", AgentStrategyDeclaration, "agent strategy")
            return
        self.result.agent_provider = provider
        self.result.files["agent_provider"] = path
        self.python_source(doc, ("extra", "python", "source"), _source(provider.extra), "an agent strategy provider",
                           True)
        for index, item in enumerate(provider.strategies):
            if isinstance(item, AgentStrategyDeclaration):
                self.result.strategies.append(item)
                continue
            sdoc = self.document(item, doc, ("strategies", index), "agent strategy")
            strategy = self.model(AgentStrategyDeclaration, sdoc) if sdoc else None
            if sdoc is None or strategy is None:
                continue
            self.python_source(sdoc, ("extra", "python", "source"), _source(strategy.extra), "an agent strategy", True)
            self.result.strategies.append(strategy)

    def trigger_provider(self, path: str, mdoc: YamlDocument, ref: Path, _: str) -> None:
        doc = self.document(path, mdoc, ref, "trigger provider")
        provider = self.model(TriggerProviderDeclaration, doc) if doc else None
        if doc is None or provider is None:
            return
        self.result.trigger_provider = provider
        self.result.files["trigger_provider"] = path
        self.python_source(doc, ("extra", "python", "source"), provider.extra.python.source, "a trigger provider", True)
        bases = class_bases(self.source.read(provider.extra.python.source))
        if provider.subscription_constructor is not None and bases is not None \
                and "TriggerSubscriptionConstructor" not in bases:
            self.ref_problem(doc, ("subscription_constructor",), f"{provider.extra.python.source} defines no "
                             "TriggerSubscriptionConstructor subclass, which a subscription_constructor needs (both "
                             "SDKs refuse to start)", severity="warning")
        for index, item in enumerate(provider.events):
            if isinstance(item, EventDeclaration):
                self.result.events.append(item)
                continue
            edoc = self.document(item, doc, ("events", index), "event")
            event = self.model(EventDeclaration, edoc) if edoc else None
            if edoc is None or event is None:
                continue
            self.python_source(edoc, ("extra", "python", "source"), event.extra.python.source, "an event", True)
            self.result.events.append(event)
            self.result.files[f"event:{event.identity.name}"] = item
        names = [e.identity.name for e in self.result.events]
        for name in sorted({n for n in names if names.count(n) > 1}):
            self.ref_problem(doc, ("events",), f"event name {name!r} is declared more than once (the official SDK "
                             "refuses to start: 'Event is already registered')")
        if not provider.events:
            self.ref_problem(doc, ("events",), "the provider declares no events, so no workflow can use it",
                             severity="warning")

    def datasource_provider(self, path: str, mdoc: YamlDocument, ref: Path, _: str) -> None:
        load_datasource_provider(self, path, mdoc, ref)

    def raw_provider(self, path: str, mdoc: YamlDocument, ref: Path, kind: str) -> None:
        doc = self.document(path, mdoc, ref, kind.rstrip("s"))
        if doc is None:
            return
        if not isinstance(doc.data, dict):
            self.ref_problem(doc, (), "expected a mapping")
            return
        self.result.raw_providers[kind] = doc.data
        self.ref_problem(doc, (), f"{kind} providers are loaded as they are; plugdock does not check their fields yet",
                         severity="warning")

    def assets_rules(self, manifest: PluginManifest, doc: YamlDocument) -> None:
        def need(icon: str | None, idoc: YamlDocument, path: Path, severity: str = "error") -> None:
            if icon and f"_assets/{icon}" not in self.all_files:
                self.ref_problem(idoc, path, f"icon {icon!r} is not in _assets/", severity=severity)

        need(manifest.icon, doc, ("icon",))
        need(manifest.icon_dark, doc, ("icon_dark",))
        for key, provider_doc_path, icons in self.provider_icons():
            pdoc = load_yaml(self.source.read(provider_doc_path) or b"", provider_doc_path)
            for field_path, icon in icons:
                need(icon, pdoc, field_path, "warning" if key == "agent_provider" else "error")

    def provider_icons(self) -> list[tuple[str, str, list[tuple[Path, str]]]]:
        r = self.result
        out: list[tuple[str, str, list[tuple[Path, str]]]] = []
        if r.tool_provider:
            icons: list[tuple[Path, str]] = [(("identity", "icon"), r.tool_provider.identity.icon)]
            if r.tool_provider.identity.icon_dark:
                icons.append((("identity", "icon_dark"), r.tool_provider.identity.icon_dark))
            out.append(("tool_provider", r.files["tool_provider"], icons))
        if r.model_provider:
            icons = [(tuple(p.split(".")), v) for p, v in r.model_provider.icon_files()]
            out.append(("model_provider", r.files["model_provider"], icons))
        if r.trigger_provider:
            icons = [(("identity", "icon"), r.trigger_provider.identity.icon)]
            if r.trigger_provider.identity.icon_dark:
                icons.append((("identity", "icon_dark"), r.trigger_provider.identity.icon_dark))
            out.append(("trigger_provider", r.files["trigger_provider"], icons))
        if r.agent_provider:
            out.append(("agent_provider", r.files["agent_provider"], [(("identity", "icon"),
                                                                         r.agent_provider.identity.icon)]))
        return out

    def permission_rules(self, manifest: PluginManifest, doc: YamlDocument) -> None:
        perm = manifest.permission
        where = ("resource", "permission")
        if manifest.plugins.endpoints and not perm.allows("endpoint"):
            self.ref_problem(doc, where, "the plugin declares endpoints, so resource.permission.endpoint.enabled "
                             "must be true (the daemon refuses to set up endpoints otherwise)")
        if manifest.plugins.agent_strategies:
            for cap in ("tool", "model.llm"):
                if not perm.allows(cap):
                    self.ref_problem(doc, where, f"agent strategies call tools and models; enable {cap} in "
                                     f"resource.permission or reverse calls will be refused", severity="warning")
        if perm.storage and perm.storage.enabled is False and "size" in perm.storage.model_fields_set:
            self.ref_problem(doc, (*where, "storage", "enabled"), "storage.size is set but storage is not enabled",
                             severity="warning")

    def source_rules(self) -> None:
        sources = {path: data for path in self.result.python_sources if (data := self.source.read(path)) is not None}
        manifest = self.result.manifest
        self.add(check_sources(sources, manifest.meta.runner.version if manifest else ""))

    def link_rules(self) -> None:
        for link in getattr(self.source, "links", []):
            severity = "error" if link.refused else "warning"
            self.add([Problem(link.path, None, None, "", link.message(), severity)])


class _RawRefs:
    """The provider files an invalid manifest names (``plugins.tools: [...]``), read as written."""

    def __init__(self, data: Any) -> None:
        plugins = data.get("plugins") if isinstance(data, dict) else None
        self.plugins = plugins if isinstance(plugins, dict) else {}

    def __getattr__(self, attr: str) -> list[str]:
        paths = self.plugins.get(attr)
        return [p for p in paths if isinstance(p, str)] if isinstance(paths, list) else []


def _source(extra: Any) -> str | None:
    python = getattr(extra, "python", None)
    return getattr(python, "source", None)


def load_plugin(source: FileSource) -> LoadedPlugin:
    """Load and check every declaration of a plugin; see ``LoadedPlugin.problems`` for what is wrong."""
    return _Loader(source).run()
