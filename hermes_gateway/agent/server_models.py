"""The model names the configured server offers (``GET /v1/models``), briefly cached.

``/model <name>`` must only switch to a model the operator allows: one named in the config
or one the server itself lists. Asking the server costs a round trip, so the answer is kept
for a minute (a failure for a few seconds), and the request has a short timeout so a slow
server cannot hold a chat command.
"""

from __future__ import annotations

import logging
import time

from hermes_gateway.config import ModelConfig
from hermes_gateway.redact import redact_url

__all__ = ["listed_models", "served_context_length"]

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
    import httpx

    headers = {"Authorization": f"Bearer {model.api_key}"} if model.api_key else {}
    url = model.base_url.rstrip("/") + "/models"
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(url, headers=headers)
        if response.status_code != 200:
            log.info("model list at %s: HTTP %s", redact_url(url), response.status_code)
            return None
        data = response.json().get("data", [])
        for entry in data:
            if isinstance(entry, dict) and entry.get("id"):
                window = next((entry[k] for k in WINDOW_KEYS if k in entry), None)
                if isinstance(window, int) and not isinstance(window, bool) and window > 0:
                    _windows[(model.base_url, str(entry["id"]))] = window
        return tuple(str(m["id"]) for m in data if isinstance(m, dict) and m.get("id"))
    except (httpx.HTTPError, ValueError, AttributeError, TypeError) as exc:
        log.info("model list at %s unavailable: %s", redact_url(url), type(exc).__name__)
        return None
