"""Find what a plugin declares and the Python classes that implement it.

The declarations were validated when the plugin was packaged (or by ``plugdock validate``), so the
runtime reads the YAML with the fast C loader and no pydantic; a missing file or class is still a
clear ``RegistryError`` naming the file.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import inspect
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class RegistryError(Exception):
    """The plugin cannot be loaded: a declaration, file or class is missing or wrong."""


def read_yaml(root: Path, rel: str) -> Any:
    path = root / rel
    try:
        with path.open("rb") as handle:
            return yaml.load(handle, Loader=_Loader)
    except FileNotFoundError:
        raise RegistryError(f"{rel}: file not found (referenced by the plugin's declarations)") from None
    except yaml.YAMLError as exc:  # one line at the problem's place, as validate reports it
        mark = getattr(exc, "problem_mark", None)
        where = f"{rel}:{mark.line + 1}:{mark.column + 1}" if mark is not None else rel
        problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
        raise RegistryError(f"{where}: invalid YAML: {problem}") from None


def import_source(root: Path, source: str) -> Any:
    """Import a plugin's Python file by path, under the module name its path gives (``tools/x.py`` -> ``tools.x``)."""
    path = (root / source).resolve()
    if not path.is_file():
        raise RegistryError(f"{source}: Python source not found")
    module_name = source[:-3].replace("/", ".") if source.endswith(".py") else source.replace("/", ".")
    module = sys.modules.get(module_name)
    if module is None or getattr(module, "__file__", None) != str(path):
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise RegistryError(f"{source}: cannot be imported")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[module_name]
            frame = plugin_frame(exc, root)
            where = f" (at {frame})" if frame else ""
            raise RegistryError(f"{source}: import failed: {type(exc).__name__}: {exc}{where}") from exc
        parent, _, child = module_name.rpartition(".")
        if parent in sys.modules:  # as ``import tools.x`` leaves it: the package knows its module
            setattr(sys.modules[parent], child, module)
    return module


def plugin_frame(exc: BaseException, root: Path) -> str | None:
    """Where in the plugin's own code ``exc`` was raised: ``file:line in function: code`` of the innermost
    frame under ``root`` (the SDK's and plugdock's frames are not the author's to fix)."""
    root = root.resolve()
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        rel = _inside(Path(frame.filename), root)
        if rel is not None:
            found = (rel, frame)
    if found is None:
        return None
    rel, frame = found
    code = f": {frame.line.strip()}" if frame.line else ""
    return f"{rel}:{frame.lineno} in {frame.name}{code}"


def _inside(path: Path, root: Path) -> str | None:
    """``path`` relative to the plugin folder, if it is the plugin's own code (not a ``.venv`` in it)."""
    if not path.is_absolute():
        return None
    try:
        rel = path.resolve().relative_to(root)
    except ValueError:
        return None
    if any(part.startswith(".") or part == "site-packages" for part in rel.parts):
        return None
    return rel.as_posix()


def load_class(root: Path, source: str, base: type, *, many: bool = False, typed_name: str | None = None) -> Any:
    """Import ``source`` (a path relative to the plugin root) and return the subclass of ``base`` it defines.

    For tools, a function declared with ``@tool`` (``plugdock.sdk.typed``) counts as the tool class.
    """
    module = import_source(root, source)
    found = [obj for obj in vars(module).values()
             if inspect.isclass(obj) and issubclass(obj, base) and obj is not base and not inspect.isabstract(obj)
             and obj.__module__ == module.__name__]
    if many:
        return found
    if not found and typed_name is not None:
        typed = [t for t in vars(module).values() if type(t).__name__ == "TypedTool"]
        match = [t for t in typed if t.name == typed_name] or (typed if len(typed) == 1 else [])
        if match:
            return match[0].tool_class
    if not found:
        raise RegistryError(f"{source}: defines no concrete subclass of {base.__name__}")
    if len(found) > 1:
        names = ", ".join(c.__name__ for c in found)
        raise RegistryError(f"{source}: defines several subclasses of {base.__name__} ({names}); keep one")
    return found[0]


def _source(decl: Any, key: str = "source") -> str:
    try:
        value = decl["extra"]["python"][key]
    except (KeyError, TypeError):
        raise RegistryError(f"declaration {decl.get('identity', decl)!r} has no extra.python.{key}") from None
    return str(value)


@dataclass
class ToolProviderEntry:
    name: str
    declaration: dict[str, Any]
    provider_cls: type
    tools: dict[str, type] = field(default_factory=dict)
    tool_declarations: dict[str, dict[str, Any]] = field(default_factory=dict)
    typed: dict[str, Any] = field(default_factory=dict)  # the ``@tool`` function behind a typed tool


@dataclass
class ModelProviderEntry:
    name: str
    declaration: dict[str, Any]
    provider_cls: type
    model_classes: dict[str, type] = field(default_factory=dict)
    model_declarations: list[dict[str, Any]] = field(default_factory=list)
    _schemas: list[Any] | None = None

    def schemas(self) -> list[Any]:
        """The predefined models as ``AIModelEntity`` objects (built on first use: this needs pydantic)."""
        if self._schemas is None:
            from plugdock.schema.model import PARAMETER_TEMPLATES
            from plugdock.sdk.model.entities import AIModelEntity

            schemas = []
            for decl in self.model_declarations:
                data = dict(decl)
                data.setdefault("label", {"en_US": data.get("model", "")})
                rules = []
                for rule in data.get("parameter_rules") or []:
                    template = dict(PARAMETER_TEMPLATES.get(rule.get("use_template") or "", {}))
                    template.update({k: v for k, v in rule.items() if v is not None})
                    template.setdefault("label", {"en_US": template.get("name", "")})
                    rules.append(template)
                data["parameter_rules"] = rules
                schemas.append(AIModelEntity.model_validate(data))
            self._schemas = schemas
        return self._schemas


@dataclass
class EndpointEntry:
    path: str
    method: str
    declaration: dict[str, Any]
    endpoint_cls: type


@dataclass
class AgentProviderEntry:
    name: str
    declaration: dict[str, Any]
    provider_cls: type
    strategies: dict[str, type] = field(default_factory=dict)
    strategy_declarations: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class PluginRegistry:
    """Everything a running plugin serves, by name."""

    root: Path
    manifest: dict[str, Any]
    tool_providers: dict[str, ToolProviderEntry] = field(default_factory=dict)
    model_providers: dict[str, ModelProviderEntry] = field(default_factory=dict)
    endpoint_settings: list[Any] = field(default_factory=list)
    endpoints: list[EndpointEntry] = field(default_factory=list)
    agent_providers: dict[str, AgentProviderEntry] = field(default_factory=dict)

    @classmethod
    def load(cls, root: str | Path = ".") -> PluginRegistry:
        root = Path(root).resolve()
        manifest = read_yaml(root, "manifest.yaml")
        if not isinstance(manifest, dict):
            raise RegistryError("manifest.yaml: expected a mapping")
        registry = cls(root=root, manifest=manifest)
        plugins = manifest.get("plugins") or {}
        for path in plugins.get("tools") or []:
            registry._load_tools(str(path))
        for path in plugins.get("models") or []:
            registry._load_models(str(path))
        for path in plugins.get("endpoints") or []:
            registry._load_endpoints(str(path))
        for path in plugins.get("agent_strategies") or []:
            registry._load_agents(str(path))
        return registry

    def _load_tools(self, path: str) -> None:
        from plugdock.sdk.tool import Tool, ToolProvider

        decl = read_yaml(self.root, path)
        name = str(decl["identity"]["name"])
        entry = ToolProviderEntry(name, decl, load_class(self.root, _source(decl), ToolProvider))
        for item in decl.get("tools") or []:
            tool_decl = read_yaml(self.root, item) if isinstance(item, str) else item
            tool_name = str(tool_decl["identity"]["name"])
            tool_cls = load_class(self.root, _source(tool_decl), Tool, typed_name=tool_name)
            entry.tools[tool_name] = tool_cls
            entry.tool_declarations[tool_name] = tool_decl
            module = sys.modules.get(tool_cls.__module__)
            typed = [t for t in vars(module).values() if getattr(t, "tool_class", None) is tool_cls] if module else []
            if typed:
                entry.typed[tool_name] = typed[0]
        self.tool_providers[name] = entry

    def _load_models(self, path: str) -> None:
        from plugdock.sdk.model.base import AIModel
        from plugdock.sdk.model.provider import ModelProvider

        decl = read_yaml(self.root, path)
        name = str(decl["provider"])
        entry = ModelProviderEntry(name, decl, load_class(self.root, _source(decl, "provider_source"), ModelProvider))
        for source in (decl.get("extra") or {}).get("python", {}).get("model_sources") or []:
            for model_cls in load_class(self.root, str(source), AIModel, many=True):
                entry.model_classes[model_cls.model_type.value] = model_cls
        models = decl.get("models")
        if isinstance(models, list):
            entry.model_declarations.extend(models)
        elif isinstance(models, dict):
            files = sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*.yaml"))
            for files_spec in models.values():
                for pattern in (files_spec or {}).get("predefined") or []:
                    for rel in files:
                        if fnmatch.fnmatchcase(rel, pattern) and not rel.endswith("_position.yaml"):
                            entry.model_declarations.append(read_yaml(self.root, rel))
        self.model_providers[name] = entry

    def _load_endpoints(self, path: str) -> None:
        from plugdock.sdk.endpoint import Endpoint

        decl = read_yaml(self.root, path)
        self.endpoint_settings = list(decl.get("settings") or [])
        for item in decl.get("endpoints") or []:
            endpoint_decl = read_yaml(self.root, item) if isinstance(item, str) else item
            self.endpoints.append(EndpointEntry(str(endpoint_decl["path"]), str(endpoint_decl["method"]).upper(),
                                                endpoint_decl, load_class(self.root, _source(endpoint_decl), Endpoint)))

    def _load_agents(self, path: str) -> None:
        from plugdock.sdk.agent import AgentStrategy, AgentStrategyProvider

        decl = read_yaml(self.root, path)
        name = str(decl["identity"]["name"])
        provider_cls = (load_class(self.root, _source(decl), AgentStrategyProvider)
                        if (decl.get("extra") or {}).get("python") else AgentStrategyProvider)
        entry = AgentProviderEntry(name, decl, provider_cls)
        for item in decl.get("strategies") or []:
            strategy_decl = read_yaml(self.root, item) if isinstance(item, str) else item
            strategy_name = str(strategy_decl["identity"]["name"])
            entry.strategies[strategy_name] = load_class(self.root, _source(strategy_decl), AgentStrategy)
            entry.strategy_declarations[strategy_name] = strategy_decl
        self.agent_providers[name] = entry

    def summary(self) -> list[str]:
        lines = [f"tool provider {n}: {', '.join(e.tools)}" for n, e in self.tool_providers.items()]
        lines += [f"model provider {n}: {', '.join(e.model_classes)}" for n, e in self.model_providers.items()]
        lines += [f"endpoint {e.method} {e.path}" for e in self.endpoints]
        lines += [f"agent provider {n}: {', '.join(e.strategies)}" for n, e in self.agent_providers.items()]
        return lines
