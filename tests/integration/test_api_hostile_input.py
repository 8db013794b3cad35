"""Hostile request bodies: absurd nesting and lone surrogates, on every endpoint.

Why: ``json.loads`` of 100,000 ``[`` raises RecursionError, which used to become a 500 with a
traceback in the log; and a lone surrogate (``"\\ud800"`` is valid JSON, not valid UTF-8) was
cleaned only in the stored copy, so the in-memory history of a continued session kept it and
every later request failed with a 502 blamed on the model server, until a restart.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hermes_gateway.config import Config, WebhookRoute
from hermes_gateway.platforms.api.webhook import sign
from tests.fakes.openai_server import FakeOpenAI
from tests.integration.api_harness import ApiHarness, start_api

SECRET = "s3cret-for-tests"


def _routes(config: Config) -> None:
    config.platforms.api_server.webhooks = {"hook": WebhookRoute(secret=SECRET)}


@pytest.fixture
async def api(hermes_home: Path, fake_openai: FakeOpenAI) -> AsyncIterator[ApiHarness]:
    harness = await start_api(hermes_home, fake_openai, configure=_routes)
    yield harness
    await harness.stop()


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _valid_utf8(value: Any) -> bool:
    try:
        for s in _strings(value):
            s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


async def _post_any(api: ApiHarness, path: str, raw: bytes) -> tuple[int, dict]:
    headers = {}
    if path.startswith("/webhooks/"):
        stamp = int(time.time())
        headers = {"X-Hermes-Timestamp": str(stamp), "X-Hermes-Signature": sign(SECRET, raw, stamp)}
    status, _, body = await api.post(path, raw=raw, headers=headers, auth=True)
    return status, json.loads(body)


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses", "/webhooks/hook"])
@pytest.mark.parametrize(
    ("raw", "what"),
    [
        (b"[" * 100_000, "recursion"),
        (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "recursion"),
        (b'{"messages":' + b"[" * 65 + b"]" * 65 + b"}", "depth"),
    ],
    ids=["100k-brackets", "100k-objects", "65-levels"],
)
async def test_deeply_nested_json_is_a_400_naming_the_nesting(
    api: ApiHarness, fake_openai: FakeOpenAI, path: str, raw: bytes, what: str
) -> None:
    status, body = await _post_any(api, path, raw)
    assert status == 400, body
    assert body["error"]["type"] == "invalid_request_error"
    assert "nested too deeply" in body["error"]["message"]
    assert fake_openai.requests == []


async def test_sane_nesting_still_works(api: ApiHarness, fake_openai: FakeOpenAI) -> None:
    deep: Any = "leaf"
    for _ in range(60):
        deep = {"x": deep}
    raw = json.dumps({"messages": [{"role": "user", "content": "hi"}], "metadata": deep})
    status, body = await _post_any(api, "/v1/chat/completions", raw.encode())
    assert status == 200, body


async def test_a_lone_surrogate_does_not_poison_the_session(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    headers = {"X-Hermes-Session-Id": "surrogate-session"}
    raw = b'{"messages": [{"role": "user", "content": "bad \\ud800 char"}], "user": "u\\udfff"}'
    status, _, body = await api.post("/v1/chat/completions", raw=raw, headers=headers)
    assert status == 200, body
    answer = json.loads(body)["choices"][0]["message"]["content"]
    assert answer == "echo: bad \ufffd char"
    # The same session again: its in-memory history must be clean as well.
    for text in ("next", "and again"):
        status, _, body = await api.post(
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": text}]},
            headers=headers,
        )
        assert status == 200, body
    assert len(fake_openai.requests) == 3
    assert all(_valid_utf8(r) for r in fake_openai.requests)
    assert "bad \ufffd char" in _strings(fake_openai.requests[-1]["messages"])


async def test_a_lone_surrogate_in_responses_and_webhooks_reaches_the_model_cleaned(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    raw = b'{"input": "r \\udc80", "instructions": "i \\ud800", "previous_response_id": null}'
    status, body = await _post_any(api, "/v1/responses", raw)
    assert status == 200, body
    status, body = await _post_any(
        api, "/v1/responses", b'{"input": "x", "previous_response_id": "\\ud800"}'
    )
    assert status == 404, body  # looked up (cleaned), not a 500 from the database
    raw = b'{"alert": "w \\ud800"}'
    status, body = await _post_any(api, "/webhooks/hook", raw)
    assert status == 200, body
    assert len(fake_openai.requests) == 2
    assert all(_valid_utf8(r) for r in fake_openai.requests)
