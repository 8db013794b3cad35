"""The model names the configured server offers (``GET /v1/models``), briefly cached.

``/model <name>`` must only switch to a model the operator allows: one named in the config
or one the server itself lists. Asking the server costs a round trip, so the answer is kept
for a minute (a failure for a few seconds), and the request has a short timeout so a slow
server cannot hold a chat command.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Literal

from hermes_gateway.config import ModelConfig
from hermes_gateway.redact import redact_url

__all__ = ["ModelsAnswer", "ask_models", "listed_models", "served_context_length"]

log = logging.getLogger(__name__)

TIMEOUT = 3.0
TTL = 60.0
FAILURE_TTL = 5.0

_cache: dict[tuple[str, str], tuple[float, tuple[str, ...] | None]] = {}
_windows: dict[tuple[str, str], int] = {}
"""(base_url, model id) -> context window, for servers whose listing says it."""
WINDOW_KEYS = ("context_length", "max_model_len", "context_window", "max_context_length")
"""Where servers put a model's window in ``/v1/models`` (OpenRouter, vLLM, others)."""


async def served_context_length(model: ModelConfig) -> int | None:
    """The model's context window as its server lists it, or None if it does not say."""
    await listed_models(model)
    return _windows.get((model.base_url, model.name))


async def listed_models(
    model: ModelConfig, *, timeout: float = TIMEOUT, ttl: float = TTL
) -> tuple[str, ...] | None:
    """Model ids the server lists, or None if it could not be asked (no URL, error, timeout)."""
    if not model.base_url:
        return None
    key = (model.base_url, model.api_key)
    now = time.monotonic()
    cached = _cache.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    found = await _fetch(model, timeout)
    _cache[key] = (now + (ttl if found is not None else FAILURE_TTL), found)
    return found


async def _fetch(model: ModelConfig, timeout: float) -> tuple[str, ...] | None:
    answer = await ask_models(model.base_url, model.api_key, timeout=timeout)
    if answer.models is None:
        log.info("model list at %s: %s", redact_url(answer.url), answer.problem)
    for name, window in answer.windows.items():
        _windows[(model.base_url, name)] = window
    return answer.models


@dataclass(frozen=True)
class ModelsAnswer:
    """What ``GET {base_url}/models`` said: the ids, or what kind of failure it was.

    ``problem`` is one of ``unreachable`` (no connection or no answer in time),
    ``unauthorized`` (401/403: the key), ``not_openai`` (an answer, but not an
    OpenAI-compatible model list) or empty when ``models`` is set; ``detail`` says more.
    """

    url: str
    models: tuple[str, ...] | None = None
    problem: Literal["", "unreachable", "unauthorized", "not_openai"] = ""
    detail: str = ""
    status: int | None = None
    windows: dict[str, int] = field(default_factory=dict)
    """Context windows the listing states, by model id (not every server says)."""


async def ask_models(base_url: str, api_key: str, *, timeout: float = TIMEOUT) -> ModelsAnswer:
    """Ask a server for its model list once (no cache), telling failures apart.

    The first-run form needs to say *why* a server cannot be used (unreachable, wrong key,
    not OpenAI-compatible); ``/model`` only needs the list.
    """
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    url = base_url.rstrip("/") + "/models"
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(url, headers=headers)
    except httpx.TimeoutException:
        return ModelsAnswer(url, problem="unreachable", detail=f"no answer within {timeout:g} s")
    except (httpx.HTTPError, ValueError) as exc:
        # ValueError: httpx refuses some malformed URLs before connecting.
        why = type(exc).__name__ if not str(exc) else str(exc)
        return ModelsAnswer(url, problem="unreachable", detail=why)
    status = response.status_code
    if status in (401, 403):
        return ModelsAnswer(url, problem="unauthorized", detail=f"HTTP {status}", status=status)
    if status != 200:
        return ModelsAnswer(url, problem="not_openai", detail=f"HTTP {status}", status=status)
    try:
        data = response.json().get("data")
        if not isinstance(data, list):
            raise TypeError("no data list")
        models = tuple(str(m["id"]) for m in data if isinstance(m, dict) and m.get("id"))
        windows: dict[str, int] = {}
        for entry in data:
            if isinstance(entry, dict) and entry.get("id"):
                window = next((entry[k] for k in WINDOW_KEYS if k in entry), None)
                if isinstance(window, int) and not isinstance(window, bool) and window > 0:
                    windows[str(entry["id"])] = window
    except (ValueError, AttributeError, TypeError, KeyError):
        return ModelsAnswer(
            url, problem="not_openai", detail="the answer is not a model list", status=status
        )
    return ModelsAnswer(url, models=models, status=status, windows=windows)
