"""Shown when no model is configured: a form to set one up without leaving the app.

Base URL, API key and model, a "Test connection" button that lists the server's models (or
says what is wrong: nobody there, the key refused, not an OpenAI-compatible server) and
"Save". Model servers found on this machine are offered as buttons that fill the form.

The widget only shows the form: checking and testing are :mod:`hermes_gateway.model_setup`'s,
and saving is the app's (it owns the config and the running gateway), asked for with
:class:`FirstRunPanel.SaveRequested`. Layout in ``hermes.tcss``.
"""

from __future__ import annotations

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Input, Label, Select, Static

from hermes_gateway.discovery import FoundServer
from hermes_gateway.model_setup import FieldError, check_fields, test_connection

SETUP_TEXT = (
    "No model is configured yet. Hermes talks to any [b]OpenAI-compatible[/b] server: give "
    "its address (and key, if it needs one), test it, pick a model and save. The model goes "
    "to {config}, the key to .env beside it."
)

FIELDS = ("base_url", "api_key", "model")


class FirstRunPanel(Vertical):
    """The first-run form; posts :class:`SaveRequested` once the server answered."""

    class SaveRequested(Message):
        """Fields checked and the server tested: the app writes the files and switches."""

        def __init__(self, base_url: str, api_key: str, model: str) -> None:
            super().__init__()
            self.base_url, self.api_key, self.model = base_url, api_key, model

    def __init__(self, config_path: str, base_url: str = "", api_key: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.config_path = config_path
        self._initial = (base_url, api_key)
        self._servers: dict[str, tuple[FoundServer, str]] = {}

    def compose(self) -> ComposeResult:
        yield Static("Welcome to Hermes", id="first-run-title")
        yield Static(
            SETUP_TEXT.format(config=escape(self.config_path)), id="first-run-text", markup=True
        )
        yield Static("Looking for a model server on this machine…", id="first-run-found")
        yield Horizontal(id="first-run-servers")
        url, key = self._initial
        with Horizontal(classes="setup-row", id="setup-first-row"):
            yield Label("Base URL", classes="setup-label")
            yield Input(
                url, placeholder="http://127.0.0.1:11434/v1", id="setup-base_url", compact=True
            )
        with Horizontal(classes="setup-row"):
            yield Label("API key", classes="setup-label")
            yield Input(
                key,
                placeholder="empty if the server needs none",
                password=True,
                id="setup-api_key",
                compact=True,
            )
        with Horizontal(classes="setup-row"):
            yield Label("Model", classes="setup-label")
            yield Select[str](
                [], prompt="test the connection to list them", id="setup-model", compact=True
            )
        with Horizontal(id="setup-buttons"):
            yield Button("Test connection", id="setup-test", compact=True)
            yield Button("Save", id="setup-save", variant="primary", compact=True)
        yield Static("", id="setup-status")

    def on_mount(self) -> None:
        # A new user's first job is this form; Esc goes back to the chat input.
        self.query_one("#setup-base_url", Input).focus()

    # --- what the fields hold ---------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self.query_one("#setup-base_url", Input).value.strip()

    @property
    def api_key(self) -> str:
        return self.query_one("#setup-api_key", Input).value.strip()

    @property
    def model(self) -> str:
        value = self.query_one("#setup-model", Select).value
        return value if isinstance(value, str) else ""

    def fill(self, base_url: str, api_key: str = "") -> None:
        self.query_one("#setup-base_url", Input).value = base_url
        self.query_one("#setup-api_key", Input).value = api_key

    def show_models(self, models: tuple[str, ...], chosen: str = "") -> None:
        select = self.query_one("#setup-model", Select)
        select.set_options((m, m) for m in models)
        if models:
            select.value = chosen if chosen in models else models[0]

    def show_status(self, text: str, *, error: bool = False, field: str = "") -> None:
        """One line under the buttons (error or success); an error marks its field."""
        status = self.query_one("#setup-status", Static)
        status.update(text)
        status.set_class(error, "-error")
        status.set_class(not error and bool(text), "-ok")
        if text:
            status.scroll_visible(animate=False)
        for name in FIELDS:
            widget = self.query_one(f"#setup-{name}")
            widget.set_class(error and name == field, "-invalid")

    def _show_field_errors(self, errors: list[FieldError]) -> None:
        self.show_status("; ".join(map(str, errors)), error=True, field=errors[0].field)

    # --- found servers ----------------------------------------------------------------

    async def show_servers(self, servers: list[FoundServer]) -> None:
        found = self.query_one("#first-run-found", Static)
        if not servers:
            found.update(
                "No model server answered on 127.0.0.1 ports 11434 (Ollama), 8080 (llama.cpp) "
                "or 1234 (LM Studio)."
            )
            return
        found.update("Found on this machine (choose one to fill the form):")
        buttons = []
        for index, server in enumerate(servers):
            model = server.models[0] if server.models else ""
            button_id = f"use-server-{index}"
            self._servers[button_id] = (server, model)
            label = f"{server.label}: {model}" if model else server.label
            buttons.append(Button(label, id=button_id, compact=True))
        await self.query_one("#first-run-servers").mount_all(buttons)

    # --- buttons ----------------------------------------------------------------------

    @on(Button.Pressed)
    def _on_button(self, event: Button.Pressed) -> None:
        event.stop()
        button_id = event.button.id or ""
        if (choice := self._servers.get(button_id)) is not None:
            server, model = choice
            self.fill(server.base_url)
            self.show_models(server.models, model)
            self.show_status(f"{server.label} at {server.base_url}: choose a model and save.")
            self.query_one("#setup-save").focus()
        elif button_id == "setup-test":
            self.test(save=False)
        elif button_id == "setup-save":
            self.test(save=True)

    @on(Input.Submitted)
    def _on_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.test(save=False)

    @work(name="setup-test", group="setup-test", exclusive=True, exit_on_error=False)
    async def test(self, *, save: bool) -> None:
        """Ask the server for its models; with ``save``, then ask the app to save."""
        url, key = self.base_url, self.api_key
        # Without a model yet, Save tests first: the list comes back and its first is taken.
        errors = check_fields(url, key, self.model if save and self.model else None)
        if errors:
            self._show_field_errors(errors)
            return
        self.show_status(f"Asking {url} for its models…")
        result = await test_connection(url, key)
        if not result.ok:
            self.show_models(())
            self.show_status(result.error, error=True, field=result.field)
            return
        if not result.models:
            self.show_status("The server answered but lists no model.", error=True, field="model")
            return
        self.show_models(result.models, self.model)
        if not save:
            count = len(result.models)
            self.show_status(
                f"✓ Connected: {count} model{'s' if count != 1 else ''} found. Choose one and save."
            )
            return
        self.post_message(self.SaveRequested(url, key, self.model))
