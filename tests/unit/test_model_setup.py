"""model_setup: the first-run form's fields, and config.yaml / .env changed in place.

Files are real, in the test's HERMES_HOME; each case starts from what a Hermes user may
already have there and checks what survived.
"""

from __future__ import annotations

import os
import stat

import pytest

from hermes_gateway.config import load_config
from hermes_gateway.model_setup import SaveError, adopt_model, check_fields, save_model
from hermes_gateway.paths import HermesPaths

URL = "http://127.0.0.1:11434/v1"


def _load(home):
    return load_config(HermesPaths(home), {"HERMES_HOME": str(home)})


def test_fields_are_named_with_the_reason():
    errors = {e.field: e.reason for e in check_fields("ftp://x", "two words", "a model")}
    assert errors["base_url"].startswith("must start with http")
    assert "no spaces" in errors["api_key"]
    assert "spaces" in errors["model"]
    assert check_fields(URL, "sk-1", "llama3.1:8b") == []
    assert [e.field for e in check_fields("", "", None)] == ["base_url"]
    assert [e.field for e in check_fields(URL, "a'b", "m")] == ["api_key"]
    assert [e.field for e in check_fields("http://host:port/v1", "", "m")] == ["base_url"]
    assert [e.field for e in check_fields(URL, "sk\nOTHER=1", "m")] == ["api_key"]
    huge = check_fields(URL, "k" * 1_000_000, "m")  # a whole file pasted by mistake
    assert [(e.field, e.reason) for e in huge] == [
        ("api_key", "too long (1,000,000 characters; at most 4,096)")
    ]


def test_hermes_short_form_and_comments_survive(hermes_home):
    (hermes_home / "config.yaml").write_text(
        "# mine\nmodel: gpt-4o  # old\ndisplay:\n  theme: textual-light  # keep\n"
    )
    save_model(HermesPaths(hermes_home), URL, "", "llama3.1")
    text = (hermes_home / "config.yaml").read_text()
    assert text.startswith("# mine\n") and "theme: textual-light  # keep" in text
    config = _load(hermes_home)
    assert (config.model.base_url, config.model.name) == (URL, "llama3.1")
    assert config.display.theme == "textual-light"
    assert not (hermes_home / ".env").exists()  # no key, no .env


def test_the_name_goes_where_the_file_already_keeps_it(hermes_home):
    (hermes_home / "config.yaml").write_text(
        'model:\n  default: "anthropic/claude"   # main\n  provider: openrouter\n'
    )
    save_model(HermesPaths(hermes_home), URL, "", "llama3.1")
    text = (hermes_home / "config.yaml").read_text()
    assert 'default: "llama3.1"' in text and "name:" not in text and "# main" in text
    assert _load(hermes_home).model.name == "llama3.1"


def test_env_keeps_its_lines_and_overriding_ones_follow(hermes_home):
    env = hermes_home / ".env"
    env.write_text(
        "# tokens\nTELEGRAM_BOT_TOKEN=123:abc\nexport OPENAI_API_KEY=old\n"
        "OPENAI_API_KEY=older\nHERMES_MODEL=gpt-4o"
    )
    env.chmod(0o644)
    saved = save_model(HermesPaths(hermes_home), URL, "sk-new", "llama3.1")
    assert env.read_text() == (
        "# tokens\nTELEGRAM_BOT_TOKEN=123:abc\nOPENAI_API_KEY='sk-new'\nHERMES_MODEL='llama3.1'\n"
    )
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert any("HERMES_MODEL" in n for n in saved.notes)
    config = _load(hermes_home)
    assert (config.model.name, config.model.api_key) == ("llama3.1", "sk-new")
    assert "sk-new" not in (hermes_home / "config.yaml").read_text()

    save_model(HermesPaths(hermes_home), URL, "", "llama3.1")  # the key cleared on purpose
    assert "OPENAI_API_KEY" not in env.read_text() and "TELEGRAM_BOT_TOKEN" in env.read_text()


@pytest.mark.parametrize("bad", ["model: [unclosed\n", "- a list\n- of things\n"])
def test_a_config_it_cannot_edit_is_left_alone_and_nothing_is_written(hermes_home, bad):
    (hermes_home / "config.yaml").write_text(bad)
    with pytest.raises(SaveError, match="config.yaml"):
        save_model(HermesPaths(hermes_home), URL, "sk-1", "m")
    assert (hermes_home / "config.yaml").read_text() == bad
    assert not (hermes_home / ".env").exists()
    assert sorted(p.name for p in hermes_home.iterdir()) == ["config.yaml"]


def test_invalid_fields_write_nothing(hermes_home):
    with pytest.raises(SaveError, match="Base URL"):
        save_model(HermesPaths(hermes_home), "127.0.0.1:11434", "sk-1", "m")
    assert list(hermes_home.iterdir()) == []


def test_a_failed_rename_leaves_the_old_file_and_no_temporary(hermes_home, monkeypatch):
    (hermes_home / "config.yaml").write_text("agent:\n  max_turns: 5\n")

    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(SaveError, match="No space left"):
        save_model(HermesPaths(hermes_home), URL, "", "m")
    assert (hermes_home / "config.yaml").read_text() == "agent:\n  max_turns: 5\n"
    assert sorted(p.name for p in hermes_home.iterdir()) == ["config.yaml"]


def test_a_symlinked_config_stays_a_link(hermes_home, tmp_path):
    real = tmp_path / "dotfiles" / "hermes.yaml"
    real.parent.mkdir()
    real.write_text("agent:\n  max_turns: 5\n")
    (hermes_home / "config.yaml").symlink_to(real)
    save_model(HermesPaths(hermes_home), URL, "", "m")
    assert (hermes_home / "config.yaml").is_symlink()
    assert "base_url: http://127.0.0.1:11434/v1" in real.read_text()


def test_adopting_says_what_the_environment_overrides(hermes_home):
    save_model(HermesPaths(hermes_home), URL, "sk-1", "llama3.1")
    running = _load(hermes_home)
    fresh = load_config(
        HermesPaths(hermes_home), {"HERMES_HOME": str(hermes_home), "HERMES_MODEL": "forced"}
    )
    notes = adopt_model(running, fresh, URL, "llama3.1")
    assert running.model.name == "forced"
    assert notes == ["HERMES_MODEL in the environment overrides the saved model"]


SAVER = """
import sys
from pathlib import Path
from hermes_gateway.model_setup import save_model
from hermes_gateway.paths import HermesPaths
paths = HermesPaths(Path(sys.argv[1]))
n = 0
while True:
    n += 1
    save_model(paths, "http://127.0.0.1:11434/v1", f"sk-{n % 2}", f"model-{n % 2}")
    if n == 3:
        print("saving", flush=True)
"""


@pytest.mark.parametrize("round_", range(3))
def test_killed_mid_save_leaves_whole_files(hermes_home, round_):
    """kill -9 while saving in a loop: each file is the old or the new one, never a mix, and
    the next save sweeps the temporary file a kill left."""
    import signal
    import subprocess
    import sys
    import time

    (hermes_home / "config.yaml").write_text("# keep\nagent:\n  max_turns: 7\n")
    (hermes_home / ".env").write_text("TELEGRAM_BOT_TOKEN=1:a\n")
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen(
        [sys.executable, "-c", SAVER, str(hermes_home)], stdout=subprocess.PIPE, env=env
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"saving\n"
    time.sleep(0.01 * round_)  # a different moment of the loop each round, not a wait
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=5)
    config = _load(hermes_home)
    assert config.model.name in ("model-0", "model-1") and config.agent.max_iterations == 7
    assert config.model.api_key in ("sk-0", "sk-1")
    assert (hermes_home / "config.yaml").read_text().startswith("# keep\n")
    assert "TELEGRAM_BOT_TOKEN=1:a\n" in (hermes_home / ".env").read_text()
    save_model(HermesPaths(hermes_home), URL, "sk-2", "after")
    assert sorted(p.name for p in hermes_home.iterdir()) == [".env", "config.yaml"]
