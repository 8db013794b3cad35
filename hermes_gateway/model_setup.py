"""Setting up the model from the app: check the form, test the server, write the files.

The first-run form (``hermes_tui/widgets/first_run.py``) is a thin face over this module, so
the rules live here, without Textual, and could serve a ``hermes setup`` command as well:

- :func:`check_fields` says which field is wrong and why; nothing is written then.
- :func:`test_connection` asks the server's ``/models`` once and turns the answer into a
  sentence a person can act on (no server there, the key is refused, not OpenAI-compatible).
- :func:`save_model` changes only the model keys of ``config.yaml`` (comments, order and every
  other section of a Hermes user's file survive) and the key in ``HERMES_HOME/.env`` (mode
  0600; a key never goes into ``config.yaml``). Each file is written to a temporary file in
  the same folder and renamed over the old one, so a crash leaves the old file or the new one.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hermes_gateway.agent.server_models import ask_models
from hermes_gateway.config import Config
from hermes_gateway.env_file import EnvFileError, replace_file, update_env_file
from hermes_gateway.paths import HermesPaths
from hermes_gateway.redact import redact_url, register_config_secrets

__all__ = [
    "ConnectionResult",
    "FieldError",
    "SaveError",
    "Saved",
    "adopt_model",
    "check_fields",
    "save_model",
    "test_connection",
]

KEY_VAR = "OPENAI_API_KEY"
URL_VAR = "OPENAI_BASE_URL"
MODEL_VAR = "HERMES_MODEL"
NAME_KEYS = ("name", "default", "model")
"""Where a model's name may already be in ``config.yaml``: ours, then Hermes Agent's two."""

_KEY_OK = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True)
class FieldError:
    """One wrong field of the form: which (``base_url``, ``api_key``, ``model``) and why."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{LABELS.get(self.field, self.field)}: {self.reason}"


LABELS = {"base_url": "Base URL", "api_key": "API key", "model": "Model"}


def check_fields(base_url: str, api_key: str, model: str | None) -> list[FieldError]:
    """Every wrong field at once (``model=None``: not checked, for "Test connection")."""
    errors: list[FieldError] = []
    url = base_url.strip()
    for name, value, limit in (("base_url", url, 2048), ("api_key", api_key, 4096)):
        if len(value) > limit:
            return [FieldError(name, f"too long ({len(value):,} characters; at most {limit:,})")]
    if model is not None and len(model) > 256:
        return [FieldError("model", f"too long ({len(model):,} characters; at most 256)")]
    if not url:
        errors.append(FieldError("base_url", "required, e.g. http://127.0.0.1:11434/v1"))
    else:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a port that is not a number
        except ValueError as exc:
            errors.append(FieldError("base_url", f"not a URL ({exc})"))
        else:
            if parts.scheme not in ("http", "https"):
                errors.append(FieldError("base_url", "must start with http:// or https://"))
            elif not parts.hostname:
                errors.append(FieldError("base_url", "has no host name"))
            elif any(c.isspace() for c in url):
                errors.append(FieldError("base_url", "must not contain spaces"))
    if api_key and not _KEY_OK.fullmatch(api_key):
        errors.append(
            FieldError(
                "api_key", "may hold only visible ASCII characters (no spaces, no line breaks)"
            )
        )
    elif "'" in api_key:
        errors.append(FieldError("api_key", "must not contain a single quote"))
    if model is not None:
        name = model.strip()
        if not name:
            errors.append(FieldError("model", "required: test the connection to list them"))
        elif any(c.isspace() or not c.isprintable() for c in name):
            errors.append(FieldError("model", "must not contain spaces or line breaks"))
    return errors


@dataclass(frozen=True)
class ConnectionResult:
    """What "Test connection" found: the models, or a message and the field to blame."""

    models: tuple[str, ...] = ()
    error: str = ""
    field: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


async def test_connection(base_url: str, api_key: str, *, timeout: float = 5.0) -> ConnectionResult:
    """Ask ``{base_url}/models`` with the key; the error names the field to fix."""
    if errors := check_fields(base_url, api_key, None):
        return ConnectionResult(error="; ".join(map(str, errors)), field=errors[0].field)
    url = base_url.strip()
    answer = await ask_models(url, api_key, timeout=timeout)
    shown = redact_url(answer.url)
    if answer.problem == "unreachable":
        return ConnectionResult(
            error=f"No server answers at {shown} ({answer.detail}). Is it running, and is the "
            "address right?",
            field="base_url",
        )
    if answer.problem == "unauthorized":
        what = "needs an API key" if not api_key else "refused this API key"
        return ConnectionResult(
            error=f"The server {what} ({answer.detail}): check your key.", field="api_key"
        )
    if answer.problem == "not_openai" or answer.models is None:
        return ConnectionResult(
            error=f"{shown} is not an OpenAI-compatible server ({answer.detail}). The base URL "
            "usually ends in /v1.",
            field="base_url",
        )
    return ConnectionResult(models=answer.models)


class SaveError(Exception):
    """A file could not be changed; nothing was written (the message names the file)."""


@dataclass
class Saved:
    """What :func:`save_model` wrote (paths), for the confirmation line."""

    config_file: Path
    env_file: Path | None
    notes: list[str] = field(default_factory=list)


def save_model(paths: HermesPaths, base_url: str, api_key: str, model: str) -> Saved:
    """Write the model to ``config.yaml`` and the key to ``.env``, or change nothing.

    Blocking file I/O: call it from a thread. config.yaml's new text is built before either
    file is replaced, so a config.yaml that cannot be parsed leaves both files as they were.

    Raises:
        SaveError: invalid fields, an unreadable or unparsable file, or a failed write.
    """
    if errors := check_fields(base_url, api_key, model):
        raise SaveError("; ".join(map(str, errors)))
    url, name = base_url.strip(), model.strip()
    config_text = _config_with_model(paths.config_file, url, name)
    paths.home.mkdir(parents=True, exist_ok=True)
    # The key first: a config.yaml naming a server whose key was not saved would fail.
    # OPENAI_BASE_URL / HERMES_MODEL lines already there would win over config.yaml, so they
    # get the new values too (never added); an empty key removes its line.
    values: dict[str, str | None] = {KEY_VAR: api_key or None, URL_VAR: url, MODEL_VAR: name}
    try:
        found = update_env_file(paths.env_file, values, add=(KEY_VAR,))
    except EnvFileError as exc:
        raise SaveError(str(exc)) from None
    notes = []
    if KEY_VAR in found and not api_key:
        notes.append(f"{KEY_VAR} removed from .env")
    notes += [
        f"{v} in .env updated too (it wins over config.yaml)"
        for v in (URL_VAR, MODEL_VAR)
        if v in found
    ]
    try:
        replace_file(paths.config_file, config_text, _mode_of(paths.config_file, 0o644))
    except EnvFileError as exc:
        raise SaveError(str(exc)) from None
    env_written = bool(api_key) or bool(found)
    return Saved(paths.config_file, paths.env_file if env_written else None, notes)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise SaveError(f"{path} cannot be read: {exc}") from None


def _config_with_model(path: Path, base_url: str, model: str) -> str:
    """config.yaml's text with ``model.base_url`` and the model's name set, all else kept."""
    from ruamel.yaml import YAML, YAMLError
    from ruamel.yaml.comments import CommentedMap

    yaml = YAML()  # round trip: comments, order, quoting and blank lines survive
    yaml.preserve_quotes = True
    text = _read(path) or ""
    try:
        data: Any = yaml.load(text) if text.strip() else None
    except YAMLError as exc:
        reason = " ".join(str(exc).split())
        raise SaveError(f"{path} is not valid YAML, so it was left alone: {reason}") from None
    if data is None:
        data = CommentedMap()
    if not isinstance(data, dict):
        raise SaveError(f"{path} must be a mapping of settings; it was left alone")
    section = data.get("model")
    if not isinstance(section, dict):
        # Absent, empty, or Hermes Agent's short form ``model: gpt-4o``: now a mapping.
        section = CommentedMap()
        data["model"] = section
    section["base_url"] = base_url
    name_key = next((k for k in NAME_KEYS if k in section), "name")
    section[name_key] = model
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def _mode_of(path: Path, default: int) -> int:
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        return default


def adopt_model(config: Config, fresh: Config, base_url: str, model: str) -> list[str]:
    """Take the reloaded model settings into the running ``config``, in place.

    The runner reads ``config.model`` at every turn and the provider pool builds a client for
    a new (address, key) on first use, so the next message goes to the new server: no
    restart. Returns what still overrides the saved values (the process environment wins
    over both files).
    """
    register_config_secrets(fresh)  # the new key is masked in logs and errors from now on
    config.model = fresh.model
    notes = []
    if fresh.model.base_url != base_url.strip():
        notes.append(f"{URL_VAR} in the environment overrides the saved base URL")
    if fresh.model.name != model.strip():
        notes.append(f"{MODEL_VAR} in the environment overrides the saved model")
    return notes
