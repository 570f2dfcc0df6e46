"""The command line, driven in-process with click's runner and, once, as a real subprocess."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from plugdock.cli.main import cli

from conftest import KINDS


def run(*args: str, cwd: Path | None = None, input: str | None = None) -> tuple[int, str]:
    runner = CliRunner()
    if cwd is not None:
        import os

        old = os.getcwd()
        os.chdir(cwd)
        try:
            result = runner.invoke(cli, list(args), input=input)
        finally:
            os.chdir(old)
    else:
        result = runner.invoke(cli, list(args), input=input)
    return result.exit_code, result.output


@pytest.mark.parametrize(("kind", "method"), [*KINDS, ("bundle", "predefined")])
def test_init_validate_package_sign_verify(tmp_path: Path, kind: str, method: str) -> None:
    target = tmp_path / "plugin"
    code, out = run(
        "init",
        str(target),
        "--kind",
        kind,
        "--name",
        "demo_x",
        "--author",
        "tester",
        "--model-method",
        method,
        "--description",
        "Made by a test",
        "-y",
    )
    assert code == 0, out
    code, out = run("validate", str(target))
    assert code == 0, out
    assert "valid" in out
    if kind == "bundle":
        return
    pkg = tmp_path / "demo.difypkg"
    code, out = run("package", str(target), "-o", str(pkg))
    assert code == 0, out
    assert out.strip().splitlines()[-1].startswith("tester/demo_x:0.0.1@")
    code, out = run("validate", str(pkg))
    assert code == 0, out
    code, out = run("keygen", "--name", "k", "--dir", str(tmp_path), "--bits", "2048")
    assert code == 0, out
    assert f"THIRD_PARTY_SIGNATURE_VERIFICATION_PUBLIC_KEYS={tmp_path / 'k.public.pem'}" in out
    code, out = run("sign", str(pkg), "--key", str(tmp_path / "k.private.pem"))
    assert code == 0, out
    signed = tmp_path / "demo.signed.difypkg"
    assert signed.exists()
    code, out = run("verify", str(signed), "--pubkey", str(tmp_path / "k.public.pem"))
    assert code == 0, out
    assert re.search(r"signed at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", out) and "k.public.pem" in out
    code, out = run("verify", str(signed))  # Dify's key alone does not verify a package signed with ours
    assert code == 1 and "does not verify" in out
    code, out = run("verify", str(pkg), "--pubkey", str(tmp_path / "k.public.pem"))
    assert code == 1
    assert "not signed" in out


def test_init_prompts(tmp_path: Path) -> None:
    code, out = run("init", str(tmp_path / "p"), input="extension\nmy_ext\nacme\nHooks\n\n\n")
    assert code == 0, out
    assert "created extension plugin acme/my_ext" in out


def test_init_refuses_bad_names_and_non_empty_dirs(tmp_path: Path) -> None:
    code, out = run("init", str(tmp_path / "p"), "--kind", "tool", "--name", "Bad Name", "-y")
    assert code == 1 and "must match ^[a-z0-9_-]{1,128}$" in out
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    code, out = run("init", str(tmp_path / "full"), "--kind", "tool", "--name", "ok", "-y")
    assert code == 1 and "is not empty" in out


def test_validate_reports_all_problems_and_json(tool_plugin: Path) -> None:
    (tool_plugin / "main.py").unlink()
    (tool_plugin / "_assets" / "icon.svg").unlink()
    code, out = run("validate", str(tool_plugin))
    assert code == 1
    assert "manifest.yaml:9:7: icon: icon 'icon.svg' is not in _assets/" in out
    assert "2 error(s)" in out or "3 error(s)" in out
    code, out = run("validate", "--json", str(tool_plugin))
    report = json.loads(out)
    assert code == 1 and report["valid"] is False
    assert {"file", "line", "column", "field", "message", "severity"} <= set(report["problems"][0])


def test_strict_turns_warnings_into_errors(tool_plugin: Path) -> None:
    path = tool_plugin / "tools" / "demo.yaml"
    path.write_text(path.read_text().replace("    required: true\n", "    requried: true\n"))
    assert run("validate", str(tool_plugin))[0] == 0
    assert run("validate", "--strict", str(tool_plugin))[0] == 1


def test_validate_broken_package_file(tmp_path: Path) -> None:
    (tmp_path / "x.difypkg").write_bytes(b"garbage")
    code, out = run("validate", str(tmp_path / "x.difypkg"))
    assert code == 1 and "not a valid .difypkg" in out and "Traceback" not in out


def test_schema_command() -> None:
    code, out = run("schema", "--kind", "tool")
    assert code == 0
    schema = json.loads(out)
    assert "identity" in schema["properties"]
    code, out = run("schema")
    assert set(json.loads(out)) >= {"manifest", "tool", "model", "model_provider", "bundle", "endpoint"}


def test_checksum_of_folder_and_package_agree(tool_plugin: Path, tmp_path: Path) -> None:
    pkg = tmp_path / "p.difypkg"
    assert run("package", str(tool_plugin), "-o", str(pkg))[0] == 0
    assert run("checksum", str(pkg))[1] == run("checksum", str(tool_plugin))[1]


def test_package_max_size(tool_plugin: Path, tmp_path: Path) -> None:
    code, out = run("package", str(tool_plugin), "-o", str(tmp_path / "p.difypkg"), "--max-size", "1K")
    assert code == 1 and "over the 1024-byte limit" in out
    code, out = run("package", str(tool_plugin), "--max-size", "lots")
    assert code == 2 and "is not a size" in out


def test_console_script_runs(tool_plugin: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "plugdock", "validate", str(tool_plugin)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr


def test_verify_trusts_difys_key_with_no_pubkey() -> None:
    marketplace = Path(__file__).parent / "fixtures" / "marketplace" / "langgenius-agent_0.0.14.difypkg"
    code, out = run("verify", str(marketplace))
    assert code == 0, out
    assert "key Dify's official key" in out and "category langgenius" in out
