"""The one .env writer: what it keeps, how it quotes, that it is atomic, private and safe
across threads. Values are read back with python-dotenv, as the config loader reads them."""

from __future__ import annotations

import io
import stat
import threading
from pathlib import Path

import pytest
from dotenv import dotenv_values

from hermes_gateway.env_file import EnvFileError, env_text_with, update_env_file


def read_back(text: str) -> dict[str, str | None]:
    return dict(dotenv_values(stream=io.StringIO(text)))


@pytest.mark.parametrize(
    "value",
    ["plain", "with space", "it's", 'say "hi"', "back\\slash", "$HOME #not a comment", "ünï", ""],
)
def test_values_read_back_exactly(value: str) -> None:
    text, _ = env_text_with("A=1\n", {"KEY": value})
    assert read_back(text) == {"A": "1", "KEY": value}


def test_other_lines_stay_and_the_key_is_replaced_in_place() -> None:
    before = (
        "# comment\n"
        "export TOKEN=abc\n"
        "\n"
        "HOME_CHANNEL=1  # old\n"
        "OTHER='x'\n"
        "HOME_CHANNEL=2\n"
        "last-line-without-newline"
    )
    text, found = env_text_with(before, {"HOME_CHANNEL": "3", "NEW": "n"})
    assert found == {"HOME_CHANNEL"}
    assert text == (
        "# comment\n"
        "export TOKEN=abc\n"
        "\n"
        "HOME_CHANNEL='3'\n"
        "OTHER='x'\n"
        "last-line-without-newline\n"
        "NEW='n'\n"
    )


def test_export_lines_are_the_same_key() -> None:
    text, found = env_text_with("export KEY=old\n", {"KEY": "new"})
    assert (text, found) == ("KEY='new'\n", {"KEY"})


def test_none_removes_and_add_limits_what_is_appended() -> None:
    text, found = env_text_with("A=1\nB=2\n", {"A": None, "B": "b", "C": "c"}, add=["B"])
    assert (text, found) == ("B='b'\n", {"A", "B"})


def test_a_byte_order_mark_is_kept_and_not_part_of_the_first_key() -> None:
    text, found = env_text_with("\ufeffKEY=old\n", {"KEY": "new"})
    assert (text, found) == ("\ufeffKEY='new'\n", {"KEY"})


@pytest.mark.parametrize("value", ["two\nlines", "cr\rhere", "nul\x00"])
def test_a_line_break_is_refused_and_nothing_is_written(tmp_path: Path, value: str) -> None:
    env = tmp_path / ".env"
    env.write_text("A=1\n")
    with pytest.raises(EnvFileError, match="line break"):
        update_env_file(env, {"KEY": value})
    assert env.read_text() == "A=1\n"


def test_bad_names_are_refused() -> None:
    with pytest.raises(EnvFileError, match="not a variable name"):
        env_text_with("", {"BAD-NAME": "x"})


def test_the_file_is_private_and_replaced_atomically(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("A=1\n")
    env.chmod(0o644)
    inode = env.stat().st_ino
    assert update_env_file(env, {"KEY": "v"}) == set()
    assert env.read_text() == "A=1\nKEY='v'\n"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert env.stat().st_ino != inode  # a new file renamed over the old one
    assert sorted(p.name for p in tmp_path.glob("*env*")) == [".env"]  # no temporary file


def test_a_temporary_file_left_by_a_killed_save_is_cleaned_up(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("A=1\n")
    stale = tmp_path / "..env.k1ll3d.tmp"  # what a save killed before its rename leaves
    stale.write_text("A=half written")
    update_env_file(env, {"B": "2"})
    assert not stale.exists() and env.read_text() == "A=1\nB='2'\n"


def test_nothing_is_created_when_nothing_would_be_written(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    update_env_file(env, {"KEY": None})
    assert not env.exists()


def test_a_symlinked_env_is_written_where_it_points(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "hermes.env"
    real.parent.mkdir()
    real.write_text("A=1\n")
    link = tmp_path / ".env"
    link.symlink_to(real)
    update_env_file(link, {"KEY": "v"})
    assert link.is_symlink() and real.read_text() == "A=1\nKEY='v'\n"


def test_saves_from_many_threads_lose_nothing(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("# keep\n")
    threads = [
        threading.Thread(target=update_env_file, args=(env, {f"KEY_{n}": str(n)}))
        for n in range(24)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    values = read_back(env.read_text())
    assert values == {f"KEY_{n}": str(n) for n in range(24)}
    assert env.read_text().startswith("# keep\n")
