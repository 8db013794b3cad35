"""Shown when no model is configured: what to set, and any local server we found."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Button, Markdown, Static

from hermes_gateway.discovery import FoundServer

SETUP_TEXT = """\
## Welcome to Hermes

No model is configured yet. Hermes talks to any **OpenAI-compatible** server.

Set these in `{config}` (or in `.env` / the environment):

```yaml
model:
  base_url: http://127.0.0.1:11434/v1   # OPENAI_BASE_URL
  name: llama3.1                         # HERMES_MODEL
  api_key: ""                            # OPENAI_API_KEY, if your server needs one
```

Then restart `hermes`. Looking for a server on this machine…
"""


class FirstRunPanel(Vertical):
    class UseServer(Message):
        def __init__(self, server: FoundServer, model: str) -> None:
            super().__init__()
            self.server, self.model = server, model

    def __init__(self, config_path: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.config_path = config_path
        self._servers: dict[str, tuple[FoundServer, str]] = {}

    def compose(self) -> ComposeResult:
        yield Markdown(SETUP_TEXT.format(config=self.config_path), id="first-run-text")
        yield Static("", id="first-run-found")

    async def show_servers(self, servers: list[FoundServer]) -> None:
        found = self.query_one("#first-run-found", Static)
        if not servers:
            found.update(
                "No model server answered on 127.0.0.1 ports 11434 (Ollama), 8080 (llama.cpp) "
                "or 1234 (LM Studio)."
            )
            return
        found.update("Found on this machine — pick one to use it now:")
        buttons = []
        for index, server in enumerate(servers):
            model = server.models[0] if server.models else "default"
            button_id = f"use-server-{index}"
            self._servers[button_id] = (server, model)
            buttons.append(Button(f"{server.label}: {model}", id=button_id, variant="primary"))
        await self.mount_all(buttons)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        choice = self._servers.get(event.button.id or "")
        if choice is not None:
            event.stop()
            self.post_message(self.UseServer(*choice))
