"""Find OpenAI-compatible model servers already answering on this machine.

A first-run user often has Ollama, llama.cpp or LM Studio running; offering it saves them
reading documentation. Only 127.0.0.1 is probed, with a short timeout each, concurrently.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

KNOWN_LOCAL_SERVERS: tuple[tuple[str, int], ...] = (
    ("Ollama", 11434),
    ("llama.cpp", 8080),
    ("LM Studio", 1234),
)


@dataclass(frozen=True)
class FoundServer:
    label: str
    base_url: str
    models: tuple[str, ...]


async def probe(label: str, port: int, *, timeout: float = 0.7) -> FoundServer | None:
    import httpx

    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(f"{base_url}/models")
        if response.status_code != 200:
            return None
        data = response.json().get("data", [])
        models = tuple(str(m.get("id")) for m in data if isinstance(m, dict) and m.get("id"))
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return FoundServer(label, base_url, models)


async def discover(
    servers: tuple[tuple[str, int], ...] = KNOWN_LOCAL_SERVERS, *, timeout: float = 0.7
) -> list[FoundServer]:
    found = await asyncio.gather(*(probe(label, port, timeout=timeout) for label, port in servers))
    return [f for f in found if f is not None]
