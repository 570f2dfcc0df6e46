"""Schemathesis against the daemon's own OpenAPI document, over real HTTP: generated requests for every
operation never get a 5xx, never hang, and every error comes in the daemon's envelope."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from daemon_harness import KEY, DaemonProcess

EXAMPLES = Path(__file__).parent.parent / "examples"
pytestmark = pytest.mark.slow
EXAMPLES_PER_OPERATION = 15
TIMEOUT = 15  # seconds: a request slower than this counts as a hang


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    d = DaemonProcess(tmp_path_factory.mktemp("fuzz") / "home", MAX_PLUGIN_PACKAGE_SIZE="1000000").start()
    d.install(EXAMPLES / "echo_tool")  # something real behind the generated requests
    yield d
    d.stop()


def envelope_problem(response: httpx.Response | object) -> str | None:
    status = response.status_code  # type: ignore[attr-defined]
    if status >= 500:
        return f"server error {status}: {response.text[:300]}"  # type: ignore[attr-defined]
    if status < 400:
        return None
    try:
        body = json.loads(response.content)  # type: ignore[attr-defined]
    except ValueError:
        return f"{status} with a body that is not JSON"
    if not isinstance(body, dict) or "code" not in body or "message" not in body:
        return f"{status} outside the envelope: {str(body)[:200]}"
    return None


def test_generated_requests_get_no_5xx_and_only_enveloped_errors(daemon: DaemonProcess) -> None:
    document = daemon.client.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    problems: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            headers = {**(case.headers or {}), "X-Api-Key": KEY}
            try:
                response = case.call(base_url=daemon.url, headers=headers, timeout=TIMEOUT)
            except Exception as exc:  # a hang or a dropped connection
                problems.append(f"{case.method} {case.formatted_path}: {type(exc).__name__}: {exc}")
                return
            problem = envelope_problem(response) if case.method != "HEAD" else (  # HEAD answers carry no body
                f"server error {response.status_code}" if response.status_code >= 500 else None)
            if problem:
                problems.append(f"{case.method} {case.formatted_path}: {problem}")

        run()
    assert operations >= 35
    assert not problems, "\n".join(sorted({p.split(": ", 1)[1] + "  <- " + p.split(": ", 1)[0][:80]
                                            for p in problems})[:20])
    assert daemon.client.get("/health/check").json()["status"] == "ok"  # and the daemon is still well
