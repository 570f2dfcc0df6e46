"""The request guards as plain ASGI, at their limits: a body of exactly the cap (declared or streamed) and one
byte more, the key compared whole, public paths and non-HTTP scopes, and the body deadline counted for the
whole body (a fake clock, so no test waits for it)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from plugdock.daemon.http import guards
from plugdock.daemon.http.guards import ApiKeyGuard, BodyLimit

Message = dict[str, Any]


class App:
    """Reads the whole body (as an app does) and answers 200 with it; records what it received."""

    def __init__(self, answer_first: bool = False) -> None:
        self.calls = 0
        self.received: list[Message] = []
        self.answer_first = answer_first

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        self.calls += 1
        if scope["type"] != "http":  # lifespan: one message in, one out
            await receive()
            await send({"type": "lifespan.startup.complete"})
            return
        if self.answer_first:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        body = b""
        while True:
            message = await receive()
            self.received.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        if not self.answer_first:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


def run(middleware: Any, chunks: list[bytes], headers: list[tuple[bytes, bytes]] | None = None,
        scope_type: str = "http", path: str = "/plugin/t/x") -> tuple[list[Message], int]:
    """Send ``chunks`` as the body; return what went out and how many receive() calls reached the client."""
    sent: list[Message] = []
    pulled = 0
    queue = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]

    async def receive() -> Message:
        nonlocal pulled
        pulled += 1
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": scope_type, "path": path, "headers": headers or []}
    asyncio.run(middleware(scope, receive, send))
    return sent, pulled


def status_and_error(sent: list[Message]) -> tuple[int, dict[str, Any]]:
    assert (sent[0]["type"], sent[1]["type"]) == ("http.response.start", "http.response.body")
    body = json.loads(sent[1]["body"])
    assert dict(sent[0]["headers"]) == {b"content-type": b"application/json",
                                        b"content-length": str(len(sent[1]["body"])).encode()}
    return sent[0]["status"], {**body, "message": json.loads(body["message"])}


# -- body cap --------------------------------------------------------------------------------------------

def test_a_declared_length_of_exactly_the_cap_passes_and_one_more_is_refused_unread() -> None:
    app = App()
    sent, _ = run(BodyLimit(app, 10, "MAX_X"), [b"x" * 10], [(b"content-length", b"10")])
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"x" * 10
    app = App()
    sent, pulled = run(BodyLimit(app, 10, "MAX_X"), [b"x" * 11], [(b"content-length", b"11")])
    assert (app.calls, pulled) == (0, 0)  # refused by the header alone
    status, body = status_and_error(sent)
    assert (status, body["code"], body["data"]) == (413, -413, None)
    assert body["message"] == {"message": "request body of 11+ bytes is over the 10-byte limit (MAX_X)",
                               "error_type": "PluginDaemonBadRequestError", "args": None}


@pytest.mark.parametrize("declared", [b"", b"abc", b"-5"])
def test_a_missing_or_unusable_length_is_counted_instead(declared: bytes) -> None:
    headers = [(b"content-length", declared)] if declared else []
    sent, _ = run(BodyLimit(App(), 10, "MAX_X"), [b"x" * 11], headers)
    assert status_and_error(sent)[0] == 413


def test_a_streamed_body_of_exactly_the_cap_passes_and_one_more_byte_is_refused() -> None:
    app = App()
    sent, _ = run(BodyLimit(app, 10, "MAX_X"), [b"abc", b"defg", b"hij"])
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"abcdefghij"
    app = App()
    sent, _ = run(BodyLimit(app, 10, "MAX_X"), [b"abc", b"defg", b"hijk"])
    status, body = status_and_error(sent)
    assert status == 413 and body["message"]["message"] == "request body of 11+ bytes is over the 10-byte limit (MAX_X)"
    assert app.received[-1] == {"type": "http.disconnect"}  # to the app, the client went away
    assert len(sent) == 2  # the app's own answer after that was dropped


def test_once_refused_every_later_receive_is_a_disconnect() -> None:
    seen: list[Message] = []

    async def greedy(scope: dict[str, Any], receive: Any, send: Any) -> None:
        for _ in range(3):
            seen.append(await receive())

    run(BodyLimit(greedy, 2, "MAX_X"), [b"abc", b"more", b"end"])
    assert seen == [{"type": "http.disconnect"}] * 3


def test_after_the_answer_has_started_the_cap_no_longer_cuts() -> None:
    """An app that answers before reading owns the response: a 413 can no longer be sent."""
    app = App(answer_first=True)
    sent, _ = run(BodyLimit(app, 5, "MAX_X"), [b"abc", b"defgh"])
    assert [m.get("status") for m in sent] == [200, None] and sent[1]["body"] == b"abcdefgh"


def test_after_the_whole_body_receive_passes_through_to_await_the_disconnect() -> None:
    seen: list[Message] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.extend([await receive(), await receive()])

    _, pulled = run(BodyLimit(app, 100, "MAX_X"), [b"abc"])
    assert seen == [{"type": "http.request", "body": b"abc", "more_body": False}, {"type": "http.disconnect"}]
    assert pulled == 2


def test_a_disconnect_ends_the_body() -> None:
    seen: list[Message] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.extend([await receive(), await receive()])

    run(BodyLimit(app, 100, "MAX_X"), [])
    assert seen == [{"type": "http.disconnect"}] * 2


def test_non_http_scopes_pass_the_body_limit_untouched() -> None:
    app = App()
    sent, pulled = run(BodyLimit(app, 1, "MAX_X"), [b"xx"], [(b"content-length", b"99")], scope_type="lifespan")
    assert (app.calls, sent, pulled) == (1, [{"type": "lifespan.startup.complete"}], 1)


# -- body deadline, on a fake clock -------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.timeouts: list[float] = []

    def time(self) -> float:
        return self.now


def run_with_clock(timeout: float, steps: list[tuple[float, Message | None]], reads_after_body: int = 0,
                   ) -> tuple[list[Message], list[float], list[Message]]:
    """Each step: the clock moves on by so much while the message arrives (None: the client stays silent).

    ``wait_for`` is replaced so that a silent client times out at once and every timeout asked for is recorded."""
    clock = Clock()
    sent: list[Message] = []
    seen: list[Message] = []
    pending = list(steps)

    async def receive() -> Message:
        advance, message = pending.pop(0)
        clock.now += advance
        if message is None:
            await asyncio.Event().wait()  # never comes
        assert message is not None
        return message

    async def fake_wait_for(awaitable: Any, timeout: float) -> Any:
        clock.timeouts.append(timeout)
        if pending and pending[0][1] is None:
            awaitable.close()
            raise TimeoutError
        return await awaitable

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            seen.append(message)
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        for _ in range(reads_after_body):
            seen.append(await receive())
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.time = clock.time  # type: ignore[method-assign]
        original = guards.asyncio.wait_for
        guards.asyncio.wait_for = fake_wait_for  # type: ignore[assignment]
        try:
            await BodyLimit(app, 1000, "MAX_X", timeout=timeout)({"type": "http", "headers": []}, receive,
                                                                   lambda m: _append(sent, m))
        finally:
            guards.asyncio.wait_for = original

    asyncio.run(main())
    return sent, clock.timeouts, seen


async def _append(sent: list[Message], message: Message) -> None:
    sent.append(message)


def chunk(body: bytes, more: bool = True) -> Message:
    return {"type": "http.request", "body": body, "more_body": more}


def test_the_deadline_is_for_the_whole_body_not_for_each_chunk() -> None:
    sent, timeouts, seen = run_with_clock(10, [(4, chunk(b"ab")), (4, chunk(b"cd")), (0, chunk(b"e", more=False))])
    assert timeouts == [10, 6, 2]  # what is left of the one deadline, each time
    assert sent[0]["status"] == 200 and len(seen) == 3


@pytest.mark.parametrize("last", [{"type": "http.request", "body": b"e"}, chunk(b"e", more=False),
                                  {"type": "http.disconnect"}])
def test_after_the_body_no_deadline_applies_to_waiting_for_the_disconnect(last: Message) -> None:
    """A message without ``more_body`` is the last one, as is a disconnect; the app may then wait for the client
    as long as it likes: that wait goes straight to the server, past the deadline too."""
    steps: list[tuple[float, Message | None]] = [(0, chunk(b"ab")), (100, last), (0, {"type": "http.disconnect"})]
    sent, timeouts, seen = run_with_clock(10, steps, reads_after_body=1)
    assert timeouts == [10, 10]  # only the body's two receives were timed
    assert seen[-1] == {"type": "http.disconnect"} and sent[0]["status"] == 200


def test_past_the_deadline_the_wait_is_the_smallest_one() -> None:
    _, timeouts, _ = run_with_clock(3, [(5, chunk(b"ab")), (0, chunk(b"c", more=False))])
    assert timeouts == [3, 0.001]


def test_a_silent_client_gets_408_naming_the_deadline_and_what_came() -> None:
    sent, _, seen = run_with_clock(2.5, [(0, chunk(b"hello")), (0, None)])
    status, body = status_and_error(sent)
    assert (status, body["code"]) == (408, -408)
    assert body["message"]["message"] == ("the request body did not arrive within 2.5 s (5 bytes came; "
                                          "PLUGDOCK_BODY_TIMEOUT)")
    assert seen[-1] == {"type": "http.disconnect"} and len(sent) == 2  # the app's answer afterwards is dropped


def test_a_whole_number_deadline_is_written_without_decimals() -> None:
    sent, _, _ = run_with_clock(60, [(0, None)])
    assert status_and_error(sent)[1]["message"]["message"].startswith("the request body did not arrive within 60 s "
                                                                      "(0 bytes came;")


def test_the_deadline_setting_named_is_the_one_given() -> None:
    sent: list[Message] = []

    async def silent() -> Message:
        await asyncio.Event().wait()
        raise AssertionError

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()

    async def main() -> None:
        await BodyLimit(app, 10, "MAX_X", timeout=0.001, timeout_setting="MY_TIMEOUT")(
            {"type": "http", "headers": []}, silent, lambda m: _append(sent, m))

    asyncio.run(main())
    assert status_and_error(sent)[1]["message"]["message"] == ("the request body did not arrive within 0.001 s "
                                                               "(0 bytes came; MY_TIMEOUT)")


# -- API key --------------------------------------------------------------------------------------------

def guarded(app: App) -> ApiKeyGuard:
    return ApiKeyGuard(app, "s3cret", public=lambda path: path.startswith("/health"))


def test_the_exact_key_passes() -> None:
    app = App()
    sent, _ = run(guarded(app), [b"x"], [(b"x-api-key", b"s3cret")])
    assert app.calls == 1 and sent[0]["status"] == 200


@pytest.mark.parametrize("given", [None, b"", b"s3cre", b"s3cret ", b"S3CRET", b"s3cretx"])
def test_any_other_key_is_refused_with_401(given: bytes | None) -> None:
    app = App()
    headers = [(b"x-other", b"s3cret")] + ([(b"x-api-key", given)] if given is not None else [])
    sent, pulled = run(guarded(app), [b"x"], headers)
    status, body = status_and_error(sent)
    assert (app.calls, pulled, status, body["code"]) == (0, 0, 401, -401)
    assert body["message"] == {"message": "unauthorized: the X-Api-Key header does not match the server key",
                               "error_type": "PluginDaemonUnauthorizedError", "args": None}


def test_public_paths_and_non_http_scopes_need_no_key() -> None:
    app = App()
    assert run(guarded(app), [b""], path="/health/check")[0][0]["status"] == 200
    lifespan = run(guarded(app), [], scope_type="lifespan", path="/plugin/x")
    assert lifespan == ([{"type": "lifespan.startup.complete"}], 1)
    assert app.calls == 2


def test_a_missing_key_header_never_matches_whatever_the_server_key() -> None:
    for key in ("XXXX", "x"):
        sent, _ = run(ApiKeyGuard(App(), key, public=lambda _p: False), [b""], [(b"x-other", key.encode())])
        assert status_and_error(sent)[0] == 401
