"""Long-lived model clients, one of each kind per provider.

Building a client per message costs a TLS context and a fresh connection pool each time; the
reference gateway pays ~250 ms of CPU per request largely for that. Here a client is built on
first use and reused for the life of the process, so its keep-alive connections are too:
a :class:`.chat_stream.ChatStreamClient` for the agent's turns (the hot path) and an
``AsyncOpenAI`` for the rare calls (titles, compression summaries). The openai SDK and aiohttp
are imported lazily, after the TUI's first frame.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from openai import AsyncOpenAI

from hermes_gateway.agent.chat_stream import ChatStreamClient, ssl_context
from hermes_gateway.config import ModelConfig


@dataclass(frozen=True)
class ProviderKey:
    base_url: str
    api_key: str
    timeout: float
    connect_timeout: float


class ProviderPool:
    """Caches clients by (base_url, api_key, timeouts); closes them all on shutdown."""

    def __init__(self) -> None:
        self._clients: dict[ProviderKey, AsyncOpenAI] = {}
        self._chats: dict[ProviderKey, ChatStreamClient] = {}

    def chat_for(self, model: ModelConfig) -> ChatStreamClient:
        """The streaming client the agent's turns use (see chat_stream.py)."""
        key = _key(model)
        chat = self._chats.get(key)
        if chat is None:
            chat = self._chats[key] = ChatStreamClient(model)
        return chat

    def client_for(self, model: ModelConfig) -> AsyncOpenAI:
        key = _key(model)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = _build(model)
        return client

    async def warm(self, model: ModelConfig) -> None:
        """Build the client in a thread: its TLS context costs ~100 ms of CPU, which must
        not land on the event loop in the middle of the first answer.

        Safe to run while the gateway already serves: if a turn built the client first,
        the one built here is closed and the turn's is kept.
        """
        if not model.configured or _key(model) in self._clients:
            return
        import asyncio
        from dataclasses import replace

        # A copy: settings changed while the thread builds (a /model, a test) must not file
        # a client built for one address under another's key.
        model = replace(model)
        built, tls = await asyncio.to_thread(_build_both, model)
        kept = self._clients.setdefault(_key(model), built)
        if kept is not built:
            await built.close()
        self._chats.setdefault(_key(model), ChatStreamClient(model, tls))

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        chats, self._chats = list(self._chats.values()), {}
        for client in clients:
            await client.close()
        for chat in chats:
            await chat.aclose()


def _key(model: ModelConfig) -> ProviderKey:
    return ProviderKey(model.base_url, model.api_key, model.timeout, model.connect_timeout)


def _build_both(model: ModelConfig) -> tuple[AsyncOpenAI, ssl.SSLContext | None]:
    """The SDK client and, for https, the TLS context of the streaming client."""
    tls = ssl_context() if model.base_url.startswith("https:") else None
    return _build(model), tls


def _build(model: ModelConfig) -> AsyncOpenAI:
    from openai import AsyncOpenAI, Timeout

    return AsyncOpenAI(
        base_url=model.base_url,
        # Local servers (Ollama, llama.cpp) accept any key; the SDK insists on one.
        api_key=model.api_key or "no-key",
        timeout=Timeout(model.timeout, connect=model.connect_timeout),
        max_retries=0,  # retries are ours: we show them and honour interrupts
    )
