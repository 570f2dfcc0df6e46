"""``plugdock run``, ``invoke`` and ``debug`` from the command line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from wire import PluginProcess, stream_data

EXAMPLES = Path(__file__).parent.parent / "examples"


def plugdock(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plugdock", *args], capture_output=True, text=True, timeout=60,
                          check=False)


def test_run_serves_stdio_like_a_daemon_launch() -> None:
    run = PluginProcess(EXAMPLES, command=[sys.executable, "-m", "plugdock", "run", str(EXAMPLES / "echo_tool")])
    run.ready()
    sid = run.request({"type": "tool", "action": "invoke_tool", "provider": "echo_tool", "tool": "echo_tool",
                       "credentials": {}, "tool_parameters": {"text": "via run"}})
    assert stream_data(run.session(sid))[0]["message"]["text"] == "via run"
    assert run.close() == 0


def test_invoke_tool_prints_messages() -> None:
    result = plugdock("invoke", str(EXAMPLES / "echo_tool"), "tool", "echo_tool", "-p", "text=hello there")
    assert result.returncode == 0, result.stderr
    first, _, rest = result.stdout.partition("\n")
    assert first == "hello there" and json.loads(rest) == {"text": "hello there", "length": 11}


def test_invoke_llm_endpoint_and_agent() -> None:
    llm = plugdock("invoke", str(EXAMPLES / "echo_model"), "llm", "echo_model-echo", "--prompt", "a b",
                   "-c", "api_key=k")
    assert llm.returncode == 0 and llm.stdout.strip() == "a b"
    endpoint = plugdock("invoke", str(EXAMPLES / "hello_endpoint"), "endpoint", "GET /hello?name=Zed")
    assert endpoint.returncode == 0 and endpoint.stdout == "Hello, Zed!" and "HTTP 200" in endpoint.stderr


def test_invoke_defaults_to_the_current_folder() -> None:
    """``plugdock invoke tool NAME`` from inside the plugin, as ``validate`` and ``package`` take ``.`` too."""
    inside = subprocess.run([sys.executable, "-m", "plugdock", "invoke", "tool", "echo_tool", "-p", "text=here"],
                            cwd=EXAMPLES / "echo_tool", capture_output=True, text=True, timeout=60, check=False)
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout.startswith("here\n")
    outside = subprocess.run([sys.executable, "-m", "plugdock", "invoke", "tool", "echo_tool"], cwd=EXAMPLES,
                             capture_output=True, text=True, timeout=60, check=False)
    assert outside.returncode == 2 and "the current folder holds no manifest.yaml" in outside.stderr
    wrong_kind = plugdock("invoke", str(EXAMPLES / "echo_tool"), "tools", "echo_tool")
    assert wrong_kind.returncode == 2 and "'tools' is not one of tool, llm" in wrong_kind.stderr
    too_many = plugdock("invoke", str(EXAMPLES / "echo_tool"), "tool", "echo_tool", "extra")
    assert too_many.returncode == 2 and "expected [DIR] KIND NAME, got 4 word(s)" in too_many.stderr


def test_invoke_names_the_place_of_a_yaml_error_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "manifest.yaml").write_text("name: [oops\n")
    result = subprocess.run([sys.executable, "-m", "plugdock", "invoke", "tool", "x"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: manifest.yaml:2:1: invalid YAML: did not find expected ',' or ']'"


def test_invoke_errors_exit_non_zero_with_one_line() -> None:
    result = plugdock("invoke", str(EXAMPLES / "echo_tool"), "tool", "missing")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: ValueError: Tool `missing` not found for provider `echo_tool`"
    bad = plugdock("invoke", str(EXAMPLES / "echo_tool"), "tool", "echo_tool", "-p", "oops")
    assert bad.returncode == 2 and "must look like key=value" in bad.stderr


# -- issue 17 items 2, 7 and 8: values by declared type, checks before the call, clean stdout, frames -------

TYPED_TOOL_YAML = """identity:
  name: kinds
  author: plugdock
  label:
    en_US: Kinds
description:
  human:
    en_US: Returns its parameters.
  llm: Returns its parameters.
parameters:
{params}
extra:
  python:
    source: tools/kinds.py
"""


def _param(name: str, kind: str, required: bool = False, extra: str = "") -> str:
    return (f"  - name: {name}\n    type: {kind}\n    required: {str(required).lower()}\n    form: llm\n"
            f"    label:\n      en_US: {name}\n    llm_description: {name}\n{extra}")


def kinds_plugin(tmp_path: Path) -> Path:
    """A tool with a parameter of each kind and a required secret credential; it prints, and answers with
    its parameters as a JSON message, so what arrived (and as what type) can be seen."""
    root = tmp_path / "kinds"
    shutil.copytree(EXAMPLES / "echo_tool", root, ignore=shutil.ignore_patterns("__pycache__"))
    provider = root / "provider" / "echo_tool.yaml"
    provider.write_text(provider.read_text().replace(
        "credentials_for_provider: {}\n",
        "credentials_for_provider:\n  api_key:\n    type: secret-input\n    required: true\n"
        "    label:\n      en_US: API key\n").replace("tools/echo_tool.yaml", "tools/kinds.yaml"))
    options = "    options:\n      - value: fast\n        label:\n          en_US: fast\n" \
              "      - value: slow\n        label:\n          en_US: slow\n"
    params = "".join([_param("city", "string", required=True), _param("count", "number"),
                      _param("loud", "boolean"), _param("tags", "array"), _param("extra", "object"),
                      _param("mode", "select", extra=options + "    default: fast\n")])
    (root / "tools" / "kinds.yaml").write_text(TYPED_TOOL_YAML.format(params=params.rstrip("\n")))
    (root / "tools" / "kinds.py").write_text(
        "from plugdock.sdk import Tool\nfrom tools.echo_tool import EchoToolTool\n\n\nclass Kinds(Tool):\n"
        "    def _invoke(self, tool_parameters):\n"
        "        print('noise from the plugin')\n"
        "        if tool_parameters['city'] == 'nowhere':\n"
        "            region = {'a': 1}['region']\n"
        "        types = {k: type(v).__name__ for k, v in tool_parameters.items()}\n"
        "        yield self.create_json_message({'got': tool_parameters, 'types': types})\n")
    return root


def run_in(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plugdock", *args], capture_output=True, text=True, timeout=60,
                          check=False, cwd=cwd, env={**os.environ, **env})


def test_invoke_reads_each_value_by_its_declared_type(tmp_path: Path) -> None:
    root = kinds_plugin(tmp_path)
    result = run_in(tmp_path, "invoke", str(root), "tool", "kinds", "-c", "api_key=s3cret", "-p", "city=123",
                    "-p", "count=2.5", "-p", "loud=true", "-p", 'tags=["a", 1]', "-p", 'extra={"k": "v"}', "--json")
    assert result.returncode == 0, result.stderr
    chunks = [json.loads(line) for line in result.stdout.splitlines()]  # --json: stdout is JSON lines only
    got = chunks[0]["message"]["json_object"]
    assert got["got"] == {"city": "123", "count": 2.5, "loud": True, "tags": ["a", 1], "extra": {"k": "v"},
                          "mode": "fast"}  # the select's default filled in, as the host does
    assert got["types"]["city"] == "str"
    assert "noise from the plugin" in result.stderr and "noise" not in result.stdout


def test_invoke_prints_json_messages_as_json(tmp_path: Path) -> None:
    root = kinds_plugin(tmp_path)
    result = run_in(tmp_path, "invoke", str(root), "tool", "kinds", "-c", "api_key=k", "-p", "city=Oslo")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["got"] == {"city": "Oslo", "mode": "fast"}  # not a wire dict


@pytest.mark.parametrize(("args", "message"), [
    (["-p", "count=many"], "tool kinds's parameter 'count' is a number; 'many' is not one"),
    (["-p", "loud=maybe"], "tool kinds's parameter 'loud' is a boolean; 'maybe' is not one (use true or false)"),
    (["-p", "tags=a,b"], "tool kinds's parameter 'tags' is an array, given as JSON; 'a,b' is not JSON"),
    (["-p", 'tags={"a": 1}'], "tool kinds's parameter 'tags' is an array; '{\"a\": 1}' is JSON dict, not array"),
    (["-p", "extra=[1]"], "tool kinds's parameter 'extra' is an object; '[1]' is JSON list, not object"),
    (["-p", "mode=warp"], "tool kinds's parameter 'mode' must be one of fast, slow; got 'warp'"),
    (["-p", "colour=red"], "tool kinds has no parameter 'colour' (its parameters: city, count, loud, tags"),
    ([], "tool kinds needs parameter city (string): pass -p city=VALUE"),
])
def test_invoke_refuses_values_that_do_not_fit_before_calling(tmp_path: Path, args: list[str],
                                                              message: str) -> None:
    root = kinds_plugin(tmp_path)
    base = [] if not args else ["-p", "city=Oslo"]
    result = run_in(tmp_path, "invoke", str(root), "tool", "kinds", "-c", "api_key=k", *base, *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "noise from the plugin" not in result.stderr  # refused before the plugin ran


def test_invoke_needs_required_credentials(tmp_path: Path) -> None:
    result = run_in(tmp_path, "invoke", str(kinds_plugin(tmp_path)), "tool", "kinds", "-p", "city=Oslo")
    assert result.returncode == 2
    assert "tool provider echo_tool needs credential api_key (secret-input): pass -c api_key=VALUE" in result.stderr


def test_invoke_checks_a_typed_tools_literal_even_when_the_yaml_is_stale(tmp_path: Path) -> None:
    root = tmp_path / "calc"
    shutil.copytree(EXAMPLES / "typed_calculator", root, ignore=shutil.ignore_patterns("__pycache__"))
    stale = root / "tools" / "word_stats.yaml"
    stale.write_text(stale.read_text().replace("  - value: characters", "  - value: lines\n    label:\n"
                                               "      en_US: lines\n  - value: characters"))
    refused = run_in(tmp_path, "invoke", str(root), "tool", "word_stats", "-p", "text=a b", "-p", "unit=lines")
    assert refused.returncode == 2
    assert "tool word_stats's parameter 'unit' must be one of words, characters; got 'lines'" in refused.stderr
    ok = run_in(tmp_path, "invoke", str(root), "tool", "add", "-p", "a=2", "-p", "b=3", "--json")
    assert ok.returncode == 0, ok.stderr
    first_chunk = json.loads(ok.stdout.splitlines()[0])
    assert first_chunk["message"]["json_object"] == {"result": 5}


def test_invoke_error_shows_the_plugins_frame_and_debug_shows_its_traceback(tmp_path: Path) -> None:
    root = kinds_plugin(tmp_path)
    args = ("invoke", str(root), "tool", "kinds", "-c", "api_key=k", "-p", "city=nowhere")
    plain = run_in(tmp_path, *args)
    assert plain.returncode == 1
    line = "error: KeyError: 'region' (at tools/kinds.py:9 in _invoke: region = {'a': 1}['region'])"
    assert plain.stderr.strip().splitlines() == ["noise from the plugin", line]
    debug = run_in(tmp_path, *args, PLUGDOCK_DEBUG="1")
    assert debug.returncode == 1
    assert f'File "{root / "tools" / "kinds.py"}", line 9, in _invoke' in debug.stderr
    assert "Traceback (most recent call last)" in debug.stderr and debug.stderr.strip().endswith(line)
    assert "plugdock/testing" not in debug.stderr  # the plugin's side only


def test_invoke_resolves_sibling_imports_from_any_directory(tmp_path: Path) -> None:
    root = kinds_plugin(tmp_path)  # tools/kinds.py imports ``from tools.echo_tool import …``
    for cwd in (tmp_path, root, root / "tools"):
        result = run_in(cwd, "invoke", str(root), "tool", "kinds", "-c", "api_key=k", "-p", "city=Oslo")
        assert result.returncode == 0, (cwd, result.stderr)


def test_invoke_llm_reads_model_parameters_by_their_rules() -> None:
    model = str(EXAMPLES / "echo_model")
    ok = plugdock("invoke", model, "llm", "echo_model-echo", "--prompt", "a b", "-c", "api_key=k",
                  "-p", "temperature=0.5", "-p", "max_tokens=10")
    assert ok.returncode == 0 and ok.stdout.strip() == "a b", ok.stderr
    refused = plugdock("invoke", model, "llm", "echo_model-echo", "--prompt", "a", "-c", "api_key=k",
                       "-p", "max_tokens=1.5")
    assert refused.returncode == 2
    assert "model echo_model-echo's model parameter 'max_tokens' is an integer; '1.5' is not one" in refused.stderr
    no_key = plugdock("invoke", model, "llm", "echo_model-echo", "--prompt", "a")
    assert no_key.returncode == 2 and "needs credential api_key (secret-input)" in no_key.stderr


def test_invoke_prints_blobs_variables_and_links_readably(tmp_path: Path) -> None:
    root = tmp_path / "kinds"
    shutil.copytree(EXAMPLES / "echo_tool", root, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "tools" / "echo_tool.py").write_text(
        "from plugdock.sdk import Tool\n\n\nclass Echo(Tool):\n    def _invoke(self, tool_parameters):\n"
        "        yield self.create_blob_message(b'x' * 20000, meta={'mime_type': 'image/png'})\n"
        "        yield self.create_variable_message('answer', {'a': 1})\n"
        "        yield self.create_link_message('https://example.com')\n")
    result = run_in(tmp_path, "invoke", str(root), "tool", "echo_tool", "-p", "text=x")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[blob: 20000 bytes, image/png]", 'answer = {"a": 1}', "https://example.com"]
