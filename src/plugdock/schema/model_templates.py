"""Model declarations resolved as the official plugin daemon resolves them when it reads a plugin.

The official daemon (``pkg/entities/plugin_entities/model_declaration.go`` of langgenius/dify-plugin-daemon)
fills every parameter rule from its ``use_template`` (``TransformTemplate``), gives a rule without an English
label its name as label, gives a model without ``fetch_from`` ``predefined-model``, and lists that are absent
become empty lists. The Dify host validates the declaration with pydantic models that require all of that
(``ParameterRule.label``/``type``, ``ProviderModel.fetch_from``), so plugdock serves the same resolved shape.

Resolution is idempotent: a resolved declaration resolves to itself, so declarations stored by earlier builds
can be resolved again at start.
"""

from __future__ import annotations

import copy
from typing import Any

PREDEFINED_MODEL = "predefined-model"

# The official daemon's PARAMETER_RULE_TEMPLATE, its texts in every language it ships them in.
PARAMETER_RULE_TEMPLATES: dict[str, dict[str, Any]] = {
    "temperature": {
        "label": {"en_US": "Temperature", "zh_Hans": "温度", "ja_JP": "温度", "pt_BR": "Temperatura"},
        "type": "float",
        "help": {
            "en_US": "Controls randomness. Lower temperature results in less random completions. As the temperature "
                     "approaches zero, the model will become deterministic and repetitive. Higher temperature results "
                     "in more random completions.",
            "zh_Hans": "温度控制随机性。较低的温度会导致较少的随机完成。随着温度接近零，模型将变得确定性和重复性。"
                       "较高的温度会导致更多的随机完成。",
            "ja_JP": "温度はランダム性を制御します。温度が低いほどランダムな完成が少なくなります。"
                     "温度がゼロに近づくと、モデルは決定論的で繰り返しになります。温度が高いほどランダムな完成が多くなります。",
            "pt_BR": "A temperatura controla a aleatoriedade. Menores temperaturas resultam em menos conclusões "
                     "aleatórias. À medida que a temperatura se aproxima de zero, o modelo se tornará determinístico e "
                     "repetitivo. Temperaturas mais altas resultam em mais conclusões aleatórias.",
        },
        "required": False, "default": 0.0, "min": 0.0, "max": 1.0, "precision": 2,
    },
    "top_p": {
        "label": {"en_US": "Top P", "zh_Hans": "Top P", "ja_JP": "Top P", "pt_BR": "Top P"},
        "type": "float",
        "help": {
            "en_US": "Controls diversity via nucleus sampling: 0.5 means half of all likelihood-weighted options are "
                     "considered.",
            "zh_Hans": "通过核心采样控制多样性：0.5表示考虑了一半的所有可能性加权选项。",
            "ja_JP": "核サンプリングを通じて多様性を制御します：0.5は、"
                     "すべての可能性加权オプションの半分を考慮します。",
            "pt_BR": "Controla a diversidade via amostragem de núcleo: 0.5 significa que metade das opções com maior "
                     "probabilidade são consideradas.",
        },
        "required": False, "default": 1.0, "min": 0.0, "max": 1.0, "precision": 2,
    },
    "top_k": {
        "label": {"en_US": "Top K", "zh_Hans": "Top K"},
        "type": "int",
        "help": {
            "en_US": "Limits the number of tokens to consider for each step by keeping only the k most likely tokens.",
            "zh_Hans": "通过只保留每一步中最可能的 k 个标记来限制要考虑的标记数量。",
        },
        "required": False, "default": 50, "min": 1.0, "max": 100.0, "precision": 0,
    },
    "presence_penalty": {
        "label": {"en_US": "Presence Penalty", "zh_Hans": "存在惩罚", "ja_JP": "存在ペナルティ",
                  "pt_BR": "Penalidade de presença"},
        "type": "float",
        "help": {
            "en_US": "Applies a penalty to the log-probability of tokens already in the text.",
            "zh_Hans": "对文本中已有的标记的对数概率施加惩罚。",
            "ja_JP": "テキストに既に存在するトークンの対数確率にペナルティを適用します。",
            "pt_BR": "Aplica uma penalidade à probabilidade logarítmica de tokens já presentes no texto.",
        },
        "required": False, "default": 0.0, "min": 0.0, "max": 1.0, "precision": 2,
    },
    "frequency_penalty": {
        "label": {"en_US": "Frequency Penalty", "zh_Hans": "频率惩罚", "ja_JP": "頻度ペナルティ",
                  "pt_BR": "Penalidade de frequência"},
        "type": "float",
        "help": {
            "en_US": "Applies a penalty to the log-probability of tokens that appear in the text.",
            "zh_Hans": "对文本中出现的标记的对数概率施加惩罚。",
            "ja_JP": "テキストに出現するトークンの対数確率にペナルティを適用します。",
            "pt_BR": "Aplica uma penalidade à probabilidade logarítmica de tokens que aparecem no texto.",
        },
        "required": False, "default": 0.0, "min": 0.0, "max": 1.0, "precision": 2,
    },
    "max_tokens": {
        "label": {"en_US": "Max Tokens", "zh_Hans": "最大标记", "ja_JP": "最大トークン", "pt_BR": "Máximo de tokens"},
        "type": "int",
        "help": {
            "en_US": "Specifies the upper limit on the length of generated results. If the generated results are "
                     "truncated, you can increase this parameter.",
            "zh_Hans": "指定生成结果长度的上限。如果生成结果截断，可以调大该参数。",
            "ja_JP": "生成結果の長さの上限を指定します。生成結果が切り捨てられた場合は、"
                     "このパラメータを大きくすることができます。",
            "pt_BR": "Especifica o limite superior para o comprimento dos resultados gerados. Se os resultados gerados "
                     "forem truncados, você pode aumentar este parâmetro.",
        },
        "required": False, "default": 64, "min": 1.0, "max": 2048.0, "precision": 0,
    },
    "response_format": {
        "label": {"en_US": "Response Format", "zh_Hans": "回复格式", "ja_JP": "応答形式",
                  "pt_BR": "Formato de resposta"},
        "type": "string",
        "help": {
            "en_US": "Set a response format, ensure the output from llm is a valid code block as possible, such as "
                     "JSON, XML, etc.",
            "zh_Hans": "设置一个返回格式，确保llm的输出尽可能是有效的代码块，如JSON、XML等",
            "ja_JP": "応答形式を設定します。llmの出力が可能な限り有効なコードブロックであることを確認します。",
            "pt_BR": "Defina um formato de resposta para garantir que a saída do llm seja um bloco de código válido o "
                     "mais possível, como JSON, XML, etc.",
        },
        "required": False, "options": ["JSON", "XML"],
    },
    "json_schema": {
        "label": {"en_US": "JSON Schema"},
        "type": "string",
        "help": {
            "en_US": "Set a response json schema will ensure LLM to adhere it.",
            "zh_Hans": "设置返回的json schema，llm将按照它返回",
        },
        "required": False,
    },
}

# Every key of the official ModelParameterRule, in its order; it marshals them all (absent ones as null).
_RULE_KEYS = ("name", "use_template", "label", "type", "help", "required", "default", "min", "max", "precision",
              "options")
# What a template fills in when the rule leaves it out. The template's label never applies: the official daemon
# gives a rule without an English label its name first (commit b2f77fd3, "using parameter_rule.name as the
# default parameter.label"), so its later "label is nil" check never holds.
_FILLED = ("type", "help", "default", "min", "max", "precision", "options")


def resolve_parameter_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """One parameter rule as the official ``TransformTemplate`` leaves it."""
    out: dict[str, Any] = {key: rule.get(key) for key in _RULE_KEYS}
    out.update({k: v for k, v in rule.items() if k not in out})
    label = out["label"]
    if not isinstance(label, dict) or not label.get("en_US"):
        out["label"] = {"en_US": out["name"]}
    template = PARAMETER_RULE_TEMPLATES.get(out["use_template"] or "") if isinstance(out["use_template"], str) else None
    if template is not None:
        for key in _FILLED:
            if out[key] is None and key in template:
                out[key] = copy.deepcopy(template[key])
    if out["required"] is None:
        out["required"] = False
    if out["options"] is None:
        out["options"] = []
    return out


def resolve_model(model: dict[str, Any]) -> dict[str, Any]:
    """One model declaration as the official daemon reads and serves it."""
    out = dict(model)
    if not out.get("fetch_from"):
        out["fetch_from"] = PREDEFINED_MODEL
    rules = out.get("parameter_rules")
    out["parameter_rules"] = [resolve_parameter_rule(r) if isinstance(r, dict) else r
                              for r in (rules if isinstance(rules, list) else [])]
    label = out.get("label")
    if not isinstance(label, dict) or not label.get("en_US"):
        out["label"] = {**(label if isinstance(label, dict) else {}), "en_US": out.get("model", "")}
    return out


def _resolve_form(schema: dict[str, Any]) -> dict[str, Any]:
    out = dict(schema)
    for key in ("options", "show_on"):
        if out.get(key) is None:
            out[key] = []
    out["options"] = [{**o, "show_on": o.get("show_on") or []} if isinstance(o, dict) else o for o in out["options"]]
    return out


def _resolve_credentials(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return schema
    forms = schema.get("credential_form_schemas")
    return {**schema, "credential_form_schemas": [_resolve_form(f) if isinstance(f, dict) else f
                                                  for f in (forms if isinstance(forms, list) else [])]}


def resolve_model_provider(provider: dict[str, Any]) -> dict[str, Any]:
    """A model provider declaration (``models`` a list of model declarations) resolved."""
    out = dict(provider)
    models = out.get("models")
    out["models"] = [resolve_model(m) if isinstance(m, dict) else m
                     for m in (models if isinstance(models, list) else [])]
    for key in ("provider_credential_schema", "model_credential_schema"):
        if out.get(key) is not None:
            out[key] = _resolve_credentials(out[key])
    return out


def resolve_model_declaration(declaration: dict[str, Any]) -> dict[str, Any]:
    """A plugin declaration with its ``model`` provider resolved; any other declaration is returned as it is."""
    model = declaration.get("model")
    if not isinstance(model, dict):
        return declaration
    return {**declaration, "model": resolve_model_provider(model)}
