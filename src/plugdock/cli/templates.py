"""Files that ``plugdock init`` writes for each plugin kind.

Every template is a complete, runnable plugin: it validates, packages, and its Python code uses the
plugdock SDK with the same class and method names as the official ``dify_plugin`` SDK.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from string import Template

from plugdock.errors import PlugdockError
from plugdock.schema.common import AUTHOR_RE, PLUGIN_NAME_RE

KINDS = ["tool", "model", "extension", "agent-strategy", "bundle"]

ICON = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="24" height="24">
  <rect x="2" y="2" width="20" height="20" rx="5" fill="#2563eb"/>
  <path d="M7 12h10M12 7v10" stroke="#fff" stroke-width="2" stroke-linecap="round"/>
</svg>
"""

DIFYIGNORE = """# Left out of the .difypkg (gitignore syntax)
__pycache__/
*.pyc
.venv/
.env
.git/
.pytest_cache/
tests/
*.difypkg
"""

MAIN = '''from plugdock.sdk import DifyPluginEnv, Plugin

plugin = Plugin(DifyPluginEnv(MAX_REQUEST_TIMEOUT=120))

if __name__ == "__main__":
    plugin.run()
'''

MANIFEST = """version: 0.0.1
type: plugin
author: $author
name: $name
label:
  en_US: $label
description:
  en_US: $description
icon: icon.svg
resource:
  memory: 268435456
  permission:$permission
plugins:
  $plugin_key:
    - $provider_file
meta:
  version: 0.0.1
  arch:
    - amd64
    - arm64
  runner:
    language: python
    version: "3.12"
    entrypoint: main
  minimum_dify_version: 1.0.0
created_at: "$created_at"
privacy: PRIVACY.md
"""

TOOL_FILES = {
    "provider/$name.yaml": """identity:
  author: $author
  name: $name
  label:
    en_US: $label
  description:
    en_US: $description
  icon: icon.svg
  tags:
    - utilities
credentials_for_provider: {}
tools:
  - tools/$name.yaml
extra:
  python:
    source: provider/$name.py
""",
    "provider/$name.py": '''from typing import Any

from plugdock.sdk import ToolProvider
from plugdock.sdk.errors import ToolProviderCredentialValidationError


class ${Class}Provider(ToolProvider):
    def _validate_credentials(self, credentials: dict[str, Any]) -> None:
        """Raise ToolProviderCredentialValidationError when the credentials do not work."""
        if credentials.get("api_key") == "invalid":
            raise ToolProviderCredentialValidationError("the API key is invalid")
''',
    "tools/$name.yaml": """identity:
  name: $name
  author: $author
  label:
    en_US: $label
description:
  human:
    en_US: Echo the text back.
  llm: Returns the given text unchanged.
parameters:
  - name: text
    type: string
    required: true
    form: llm
    label:
      en_US: Text
    human_description:
      en_US: The text to echo.
    llm_description: The text to echo back.
extra:
  python:
    source: tools/$name.py
""",
    "tools/$name.py": '''from collections.abc import Generator
from typing import Any

from plugdock.sdk import Tool, ToolInvokeMessage


class ${Class}Tool(Tool):
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        text = str(tool_parameters.get("text", ""))
        yield self.create_text_message(text)
        yield self.create_json_message({"text": text, "length": len(text)})
''',
}

MODEL_PROVIDER_PREDEFINED = """provider: $name
label:
  en_US: $label
description:
  en_US: $description
icon_small:
  en_US: icon.svg
supported_model_types:
  - llm
configurate_methods:
  - predefined-model
provider_credential_schema:
  credential_form_schemas:
    - variable: api_key
      label:
        en_US: API Key
      type: secret-input
      required: true
      placeholder:
        en_US: Enter your API key
models:
  llm:
    predefined:
      - "models/llm/*.yaml"
    position: models/llm/_position.yaml
extra:
  python:
    provider_source: provider/$name.py
    model_sources:
      - models/llm/llm.py
"""

MODEL_PROVIDER_CUSTOMIZABLE = """provider: $name
label:
  en_US: $label
description:
  en_US: $description
icon_small:
  en_US: icon.svg
supported_model_types:
  - llm
configurate_methods:
  - customizable-model
model_credential_schema:
  model:
    label:
      en_US: Model name
    placeholder:
      en_US: Enter the model name
  credential_form_schemas:
    - variable: endpoint_url
      label:
        en_US: API base URL
      type: text-input
      required: true
    - variable: api_key
      label:
        en_US: API Key
      type: secret-input
      required: false
extra:
  python:
    provider_source: provider/$name.py
    model_sources:
      - models/llm/llm.py
"""

MODEL_FILES = {
    "provider/$name.py": '''from typing import Any

from plugdock.sdk import ModelProvider
from plugdock.sdk.errors import CredentialsValidateFailedError


class ${Class}Provider(ModelProvider):
    def validate_provider_credentials(self, credentials: dict[str, Any]) -> None:
        if not credentials.get("api_key"):
            raise CredentialsValidateFailedError("api_key is required")
''',
    "models/llm/llm.py": '''from collections.abc import Generator
from typing import Any

from plugdock.sdk.model import (
    AIModelEntity,
    AssistantPromptMessage,
    FetchFrom,
    I18nObject,
    LargeLanguageModel,
    LLMResult,
    LLMResultChunk,
    LLMResultChunkDelta,
    LLMUsage,
    ModelPropertyKey,
    ModelType,
    PromptMessage,
    PromptMessageTool,
)


class ${Class}LargeLanguageModel(LargeLanguageModel):
    """An echo model: answers with the last user message. Replace the body with a real API call."""

    def _invoke(
        self,
        model: str,
        credentials: dict[str, Any],
        prompt_messages: list[PromptMessage],
        model_parameters: dict[str, Any],
        tools: list[PromptMessageTool] | None = None,
        stop: list[str] | None = None,
        stream: bool = True,
        user: str | None = None,
    ) -> LLMResult | Generator[LLMResultChunk, None, None]:
        text = str(prompt_messages[-1].content) if prompt_messages else ""
        usage = LLMUsage.empty_usage()
        if not stream:
            return LLMResult(model=model, prompt_messages=prompt_messages,
                             message=AssistantPromptMessage(content=text), usage=usage)

        def chunks() -> Generator[LLMResultChunk, None, None]:
            for index, word in enumerate(text.split(" ")):
                yield LLMResultChunk(model=model, prompt_messages=prompt_messages, delta=LLMResultChunkDelta(
                    index=index, message=AssistantPromptMessage(content=(" " if index else "") + word)))
        return chunks()

    def get_num_tokens(self, model: str, credentials: dict[str, Any], prompt_messages: list[PromptMessage],
                       tools: list[PromptMessageTool] | None = None) -> int:
        return sum(len(str(m.content or "").split()) for m in prompt_messages)

    def validate_credentials(self, model: str, credentials: dict[str, Any]) -> None:
        pass

    def get_customizable_model_schema(self, model: str, credentials: dict[str, Any]) -> AIModelEntity | None:
        return AIModelEntity(
            model=model,
            label=I18nObject(en_US=model),
            model_type=ModelType.LLM,
            fetch_from=FetchFrom.CUSTOMIZABLE_MODEL,
            model_properties={ModelPropertyKey.MODE: "chat", ModelPropertyKey.CONTEXT_SIZE: 4096},
            parameter_rules=[],
        )

    @property
    def _invoke_error_mapping(self) -> dict[type[Exception], list[type[Exception]]]:
        return {}
''',
}

MODEL_PREDEFINED_FILES = {
    "models/llm/_position.yaml": "- $name-echo\n",
    "models/llm/$name-echo.yaml": """model: $name-echo
label:
  en_US: "$name echo"
model_type: llm
features:
  - agent-thought
model_properties:
  mode: chat
  context_size: 4096
parameter_rules:
  - name: temperature
    use_template: temperature
  - name: max_tokens
    use_template: max_tokens
    default: 512
    min: 1
    max: 4096
pricing:
  input: "0.00"
  output: "0.00"
  unit: "0.000001"
  currency: USD
""",
}

EXTENSION_FILES = {
    "group/$name.yaml": """settings:
  - name: greeting
    type: text-input
    required: false
    label:
      en_US: Greeting
    placeholder:
      en_US: Hello
endpoints:
  - endpoints/hello.yaml
""",
    "endpoints/hello.yaml": """path: "/hello"
method: "GET"
extra:
  python:
    source: endpoints/hello.py
""",
    "endpoints/hello.py": '''from collections.abc import Mapping
from typing import Any

from werkzeug import Request, Response

from plugdock.sdk import Endpoint


class HelloEndpoint(Endpoint):
    def _invoke(self, r: Request, values: Mapping[str, Any], settings: Mapping[str, Any]) -> Response:
        greeting = settings.get("greeting") or "Hello"
        name = r.args.get("name", "world")
        return Response(f"{greeting}, {name}!", status=200, content_type="text/plain")
''',
}

AGENT_FILES = {
    "provider/$name.yaml": """identity:
  author: $author
  name: $name
  label:
    en_US: $label
  description:
    en_US: $description
  icon: icon.svg
strategies:
  - strategies/$name.yaml
extra:
  python:
    source: provider/$name.py
""",
    "provider/$name.py": '''from plugdock.sdk import AgentStrategyProvider


class ${Class}Provider(AgentStrategyProvider):
    pass
''',
    "strategies/$name.yaml": """identity:
  name: $name
  author: $author
  label:
    en_US: $label
description:
  en_US: Asks the model once, calling the chosen tools when it asks for them.
parameters:
  - name: model
    type: model-selector
    scope: tool-call&llm
    required: true
    label:
      en_US: Model
  - name: tools
    type: array[tools]
    required: false
    label:
      en_US: Tools
  - name: query
    type: string
    required: true
    label:
      en_US: Query
extra:
  python:
    source: strategies/$name.py
""",
    "strategies/$name.py": '''from collections.abc import Generator
from typing import Any

from plugdock.sdk import AgentInvokeMessage, AgentStrategy
from plugdock.sdk.model import UserPromptMessage


class ${Class}Strategy(AgentStrategy):
    def _invoke(self, parameters: dict[str, Any]) -> Generator[AgentInvokeMessage, None, None]:
        model = parameters["model"]
        query = str(parameters.get("query", ""))
        answer = ""
        for chunk in self.session.model.llm.invoke(
            model_config=model, prompt_messages=[UserPromptMessage(content=query)], stream=True
        ):
            answer += str(chunk.delta.message.content or "")
        yield self.create_text_message(answer)
''',
}

BUNDLE_MANIFEST = """type: bundle
name: $name
author: $author
version: 0.0.1
icon: icon.svg
labels:
  en_US: $label
description:
  en_US: $description
tags:
  - utilities
dependencies:
  - type: marketplace
    value:
      marketplace_pattern: langgenius/json_process:0.0.1
"""

PERMISSIONS = {
    "tool": "\n    tool:\n      enabled: true\n    storage:\n      enabled: true\n      size: 1048576",
    "model": "\n    tool:\n      enabled: false",
    "extension": "\n    endpoint:\n      enabled: true\n    storage:\n      enabled: true\n      size: 1048576",
    "agent-strategy": "\n    tool:\n      enabled: true\n    model:\n      enabled: true\n      llm: true",
}
PLUGIN_KEYS = {"tool": "tools", "model": "models", "extension": "endpoints", "agent-strategy": "agent_strategies"}
PROVIDER_FILES = {"tool": "provider/$name.yaml", "model": "provider/$name.yaml", "extension": "group/$name.yaml",
                  "agent-strategy": "provider/$name.yaml"}
REQUIREMENTS = {"extension": "plugdock>=0.1\nwerkzeug>=3.0\n"}


@dataclass
class PluginAnswers:
    kind: str
    name: str
    author: str
    description: str
    model_method: str = "predefined"

    def check(self) -> None:
        if self.kind not in KINDS:
            raise PlugdockError(f"kind {self.kind!r} must be one of {', '.join(KINDS)}")
        if not PLUGIN_NAME_RE.match(self.name):
            raise PlugdockError(f"name {self.name!r} must match ^[a-z0-9_-]{{1,128}}$")
        if not AUTHOR_RE.match(self.author):
            raise PlugdockError(f"author {self.author!r} must match ^[a-z0-9_-]{{1,64}}$")
        if self.model_method not in ("predefined", "customizable"):
            raise PlugdockError("model method must be predefined or customizable")


def _yaml_text(text: str) -> str:
    """Quote free text for a YAML scalar."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def plugin_files(answers: PluginAnswers) -> dict[str, str]:
    """Path -> text of every file of the new plugin."""
    label = answers.name.replace("_", " ").replace("-", " ").title()
    values = {
        "name": answers.name,
        "author": answers.author,
        "label": _yaml_text(label),
        "description": _yaml_text(answers.description),
        "Class": "".join(part.capitalize() for part in answers.name.replace("-", "_").split("_")) or "My",
        "created_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    files: dict[str, str] = {"_assets/icon.svg": ICON, ".difyignore": DIFYIGNORE}
    if answers.kind == "bundle":  # a bundle carries packages: keep them
        files[".difyignore"] = DIFYIGNORE.replace("*.difypkg\n", "")
        files["manifest.yaml"] = BUNDLE_MANIFEST
        files["README.md"] = f"# {label}\n\nA bundle of Dify plugins.\n"
    else:
        kind_files = {
            "tool": TOOL_FILES,
            "model": {**MODEL_FILES, **(MODEL_PREDEFINED_FILES if answers.model_method == "predefined" else {}),
                      "provider/$name.yaml": MODEL_PROVIDER_PREDEFINED if answers.model_method == "predefined"
                      else MODEL_PROVIDER_CUSTOMIZABLE},
            "extension": EXTENSION_FILES,
            "agent-strategy": AGENT_FILES,
        }[answers.kind]
        files.update(kind_files)
        files["main.py"] = MAIN
        files["requirements.txt"] = REQUIREMENTS.get(answers.kind, "plugdock>=0.1\n")
        files["PRIVACY.md"] = "# Privacy\n\nThis plugin does not collect personal data.\n"
        files["README.md"] = (f"# {label}\n\n{answers.description}\n\nRun `plugdock validate .` to check it and "
                              f"`plugdock package .` to build the .difypkg.\n")
        values["permission"] = PERMISSIONS[answers.kind]
        values["plugin_key"] = PLUGIN_KEYS[answers.kind]
        values["provider_file"] = Template(PROVIDER_FILES[answers.kind]).substitute(values)
        files["manifest.yaml"] = MANIFEST
    return {Template(path).substitute(values): Template(text).safe_substitute(values) for path, text in files.items()}


def render_plugin(answers: PluginAnswers, target: Path) -> list[Path]:
    written = []
    for rel, text in sorted(plugin_files(answers).items()):
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
