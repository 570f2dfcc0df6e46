"""Plugins used by the conformance tests, written against plugdock; ``to_official`` ports them to dify_plugin."""

from __future__ import annotations

import shutil
from pathlib import Path

from plugdock.sdk.compat import port_source

from conftest import make_plugin

KITCHEN_TOOL = '''
from collections.abc import Generator
from typing import Any

from plugdock.sdk import Tool, ToolInvokeMessage


class DemoTool(Tool):
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        if tool_parameters.get("fail"):
            raise ValueError("asked to fail")
        yield self.create_text_message("text " + str(tool_parameters.get("text", "")))
        yield self.create_json_message({"a": [1, 2.5, "x"], "b": None, "c": {"d": True}})
        yield self.create_json_message([1, 2])
        yield self.create_link_message("https://example.com/page")
        yield self.create_image_message("https://example.com/x.png")
        yield self.create_variable_message("v", {"n": 1, "s": "é"})
        yield self.create_stream_variable_message("s", "chunk")
        log = self.create_log_message("step", {"x": 1}, status=ToolInvokeMessage.LogMessage.LogStatus.START)
        yield log
        yield self.create_log_message("child", {"y": 2}, parent=log)
        yield self.finish_log_message(log, data={"x": 2})
        yield self.create_blob_message(bytes(range(256)) * 70, meta={"mime_type": "application/octet-stream"})
        resource = ToolInvokeMessage.RetrieverResourceMessage.RetrieverResource(position=1, content="c", score=0.5)
        yield self.create_retriever_resource_message([resource], context="ctx")
'''

MODELS_PROVIDER = """provider: demo
label:
  en_US: Demo
icon_small:
  en_US: icon.svg
supported_model_types:
  - llm
  - text-embedding
  - rerank
  - tts
  - speech2text
  - moderation
configurate_methods:
  - predefined-model
provider_credential_schema:
  credential_form_schemas:
    - variable: api_key
      label:
        en_US: API Key
      type: secret-input
      required: true
models:
  llm:
    predefined:
      - "models/llm/*.yaml"
  text_embedding:
    predefined:
      - "models/text_embedding/*.yaml"
  rerank:
    predefined:
      - "models/rerank/*.yaml"
  tts:
    predefined:
      - "models/tts/*.yaml"
  speech2text:
    predefined:
      - "models/speech2text/*.yaml"
  moderation:
    predefined:
      - "models/moderation/*.yaml"
extra:
  python:
    provider_source: provider/demo.py
    model_sources:
      - models/llm/llm.py
      - models/others.py
"""

MODEL_YAMLS = {
    "models/text_embedding/embed.yaml": "model: embed\nlabel:\n  en_US: Embed\nmodel_type: text-embedding\n"
    "model_properties:\n  context_size: 512\n  max_chunks: 4\npricing:\n  input: '0.0001'\n  unit: '0.001'\n"
    "  currency: USD\n",
    "models/rerank/rerank.yaml": "model: rerank\nlabel:\n  en_US: Rerank\nmodel_type: rerank\nmodel_properties:\n"
    "  context_size: 512\n",
    "models/tts/tts.yaml": "model: tts\nlabel:\n  en_US: TTS\nmodel_type: tts\nmodel_properties:\n"
    "  default_voice: alloy\n  voices:\n    - mode: alloy\n      name: Alloy\n      language: ['en-US']\n"
    "  word_limit: 100\n  audio_type: mp3\n  max_workers: 1\n",
    "models/speech2text/s2t.yaml": "model: s2t\nlabel:\n  en_US: S2T\nmodel_type: speech2text\n"
    "model_properties:\n  file_upload_limit: 1\n  supported_file_extensions: mp3\n",
    "models/moderation/mod.yaml": "model: mod\nlabel:\n  en_US: Mod\nmodel_type: moderation\n"
    "model_properties:\n  max_chunks: 1\n  max_characters_per_chunk: 100\n",
}

OTHER_MODELS = '''
from typing import IO, Any

from plugdock.sdk import ModerationModel, RerankModel, Speech2TextModel, TextEmbeddingModel, TTSModel
from plugdock.sdk.model import (
    EmbeddingInputType,
    EmbeddingUsage,
    PriceType,
    RerankDocument,
    RerankResult,
    TextEmbeddingResult,
)


class DemoEmbedding(TextEmbeddingModel):
    def _invoke(self, model: str, credentials: dict, texts: list[str], user: str | None = None,
                input_type: EmbeddingInputType = EmbeddingInputType.DOCUMENT) -> TextEmbeddingResult:
        tokens = sum(len(t) for t in texts)
        price = self.get_price(model, credentials, PriceType.INPUT, tokens)
        usage = EmbeddingUsage(tokens=tokens, total_tokens=tokens, unit_price=price.unit_price,
                               price_unit=price.unit, total_price=price.total_amount, currency=price.currency,
                               latency=0.0)
        return TextEmbeddingResult(model=model, embeddings=[[float(len(t)), 0.5] for t in texts], usage=usage)

    def get_num_tokens(self, model: str, credentials: dict, texts: list[str]) -> list[int]:
        return [len(t) for t in texts]

    def validate_credentials(self, model: str, credentials: dict) -> None:
        pass

    @property
    def _invoke_error_mapping(self) -> dict:
        return {}


class DemoRerank(RerankModel):
    def _invoke(self, model: str, credentials: dict, query: str, docs: list[str], score_threshold: float | None = None,
                top_n: int | None = None, user: str | None = None) -> RerankResult:
        ranked = sorted(((i, d, 1.0 / (1 + abs(len(d) - len(query)))) for i, d in enumerate(docs)),
                        key=lambda x: -x[2])
        return RerankResult(model=model, docs=[RerankDocument(index=i, text=d, score=s) for i, d, s in ranked][:top_n])

    def validate_credentials(self, model: str, credentials: dict) -> None:
        pass

    @property
    def _invoke_error_mapping(self) -> dict:
        return {}


class DemoTTS(TTSModel):
    def _invoke(self, model: str, tenant_id: str, credentials: dict, content_text: str, voice: str,
                user: str | None = None) -> Any:
        yield content_text.encode()
        yield voice.encode()

    def validate_credentials(self, model: str, credentials: dict) -> None:
        pass

    @property
    def _invoke_error_mapping(self) -> dict:
        return {}


class DemoS2T(Speech2TextModel):
    def _invoke(self, model: str, credentials: dict, file: IO[bytes], user: str | None = None) -> str:
        return "heard " + str(len(file.read())) + " bytes"

    def validate_credentials(self, model: str, credentials: dict) -> None:
        pass

    @property
    def _invoke_error_mapping(self) -> dict:
        return {}


class DemoModeration(ModerationModel):
    def _invoke(self, model: str, credentials: dict, text: str, user: str | None = None) -> bool:
        return "bad" in text

    def validate_credentials(self, model: str, credentials: dict) -> None:
        pass

    @property
    def _invoke_error_mapping(self) -> dict:
        return {}
'''


def kitchen_tool(root: Path) -> Path:
    make_plugin(root)
    (root / "tools" / "demo.py").write_text(KITCHEN_TOOL)
    return root


def all_models(root: Path) -> Path:
    make_plugin(root, kind="model")
    (root / "provider" / "demo.yaml").write_text(MODELS_PROVIDER)
    (root / "models" / "others.py").write_text(OTHER_MODELS)
    for rel, text in MODEL_YAMLS.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def to_official(root: Path, target: Path) -> Path:
    """A copy of the plugin whose Python imports the official SDK instead of plugdock."""
    shutil.copytree(root, target)
    for path in target.rglob("*.py"):
        text, notes = port_source(path.read_text(), to="dify")
        assert not notes, notes
        path.write_text(text)
    return target
