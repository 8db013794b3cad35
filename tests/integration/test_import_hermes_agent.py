"""``hermes import hermes-agent``: a Hermes Agent home's state comes in once, read only.

The home is built in Hermes Agent 0.19's own formats (tests/fakes/hermes_agent_home.py).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hermes_cron.importing import JobConverter, write_job
from hermes_cron.jobs import CronStore
from hermes_gateway import events as ev
from hermes_gateway.access.pairing import PairingManager
from hermes_gateway.gateway import Gateway
from hermes_gateway.importer import ImportReport, import_hermes_agent
from hermes_gateway.store import SessionStore
from tests.conftest import make_config
from tests.fakes.hermes_agent_home import HermesAgentHome, hermes_job

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
T0 = NOW.timestamp() - 86_400


def checksums(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (names and contents): any change, any new file shows."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def build_home(path: Path) -> HermesAgentHome:
    home = HermesAgentHome(path)
    home.session("20261119_120000_aaaa", "cli", started_at=T0, ended_at=T0 + 60, title="Zebra plan")
    home.message("20261119_120000_aaaa", "user", "plan the zebra migration", at=T0 + 1)
    home.message("20261119_120000_aaaa", "assistant", "First, count the zebras.", at=T0 + 2)
    home.message("20261119_120000_aaaa", "user", "taken back", at=T0 + 3, active=0)
    home.session(
        "20261119_130000_bbbb",
        "telegram",
        started_at=T0 + 3600,
        chat_id="4242",
        chat_type="dm",
        user_id="4242",
        display_name="Alice",
        input_tokens=120,
        output_tokens=30,
    )
    call = {"id": "c1", "type": "function", "function": {"name": "terminal", "arguments": "{}"}}
    home.message("20261119_130000_bbbb", "user", "what is the uptime", at=T0 + 3601)
    home.message("20261119_130000_bbbb", "assistant", None, at=T0 + 3602, tool_calls=[call])
    home.message(
        "20261119_130000_bbbb",
        "tool",
        "up 3 days",
        at=T0 + 3603,
        tool_call_id="c1",
        tool_name="terminal",
    )
    home.message("20261119_130000_bbbb", "assistant", "Up for 3 days.", at=T0 + 3604)
    home.session("20261119_140000_cccc", "discord", started_at=T0 + 7200, chat_id="99")
    home.approved("telegram", {"4242": "alice", "777": "bob"})
    home.approved("discord", {"555": "carol"}, folder="platforms/pairing")
    home.jobs(
        [
            hermes_job(
                "a1b2c3d4e5f6",
                "morning news",
                {"kind": "cron", "expr": "0 9 * * *"},
                name="news",
                deliver="origin",
                origin={"platform": "telegram", "chat_id": "4242", "chat_name": "Alice"},
            ),
            hermes_job(
                "b1b2c3d4e5f6",
                "check disk",
                {"kind": "interval", "minutes": 30},
                enabled=False,
                next_run_at=NOW + timedelta(minutes=10),
            ),
            hermes_job(
                "c1b2c3d4e5f6",
                "long gone",
                {"kind": "once", "run_at": (NOW - timedelta(days=1)).isoformat()},
            ),
            hermes_job(
                "d1b2c3d4e5f6",
                "",
                {"kind": "interval", "minutes": 5},
                script="watch.sh",
                no_agent=True,
            ),
            hermes_job(
                "e1b2c3d4e5f6",
                "to everyone",
                {"kind": "cron", "expr": "0 18 * * 5"},
                deliver="all,telegram:4242",
            ),
        ]
    )
    home.soul("You are Zed, terse and kind.")
    home.close()
    return home


async def run_import(store: SessionStore, home: Path) -> ImportReport:
    return await import_hermes_agent(
        store, home, convert_job=JobConverter(tz="UTC", now=NOW), write_job=write_job
    )


async def test_import_brings_everything_in_once_and_changes_nothing(
    tmp_path: Path, hermes_home: Path
) -> None:
    source = build_home(tmp_path / "hermes-agent")
    before = checksums(source.path)
    store = await SessionStore.open(hermes_home / "hermes_tui.db")
    try:
        report = await run_import(store, source.path)
        assert checksums(source.path) == before  # not a byte changed, no file added
        assert (report.sessions_new, report.messages, report.jobs, report.pairings) == (2, 6, 3, 3)
        assert report.soul == "imported" and not report.problems
        assert any("c1b2c3d4e5f6" in s and "future" in s for s in report.skipped), report.skipped
        assert any("d1b2c3d4e5f6" in s and "script" in s for s in report.skipped)
        assert any('"all"' in n for n in report.notes)

        # Sessions: ended, in their chats, with their own times; the undone row stayed out.
        local = await store.get_session("20261119_120000_aaaa")
        assert local is not None and local.session_key == "local:dm:operator"
        assert local.ended_at is not None and local.created_at == T0 and local.title == "Zebra plan"
        assert [m.content for m in await store.get_messages(local.id)] == [
            "plan the zebra migration",
            "First, count the zebras.",
        ]
        tg = await store.get_session("20261119_130000_bbbb")
        assert tg is not None and tg.session_key == "telegram:dm:4242"
        assert (tg.prompt_tokens, tg.completion_tokens, tg.display_name) == (120, 30, "Alice")
        msgs = await store.get_messages(tg.id)
        assert msgs[1].tool_calls and msgs[1].tool_calls[0]["id"] == "c1"
        assert msgs[2].to_openai() == {
            "role": "tool",
            "content": "up 3 days",
            "tool_call_id": "c1",
            "name": "terminal",
        }
        assert [m.created_at for m in msgs] == [T0 + 3601, T0 + 3602, T0 + 3603, T0 + 3604]
        assert await store.get_session("20261119_140000_cccc") is None  # empty: no row
        # Searchable (F3 uses the same search).
        hits = await store.search("zebras")
        assert [h.session_id for h in hits] == ["20261119_120000_aaaa"]

        cron = CronStore(store)
        jobs = {j.id: j for j in await cron.list()}
        assert set(jobs) == {"a1b2c3d4e5f6", "b1b2c3d4e5f6", "e1b2c3d4e5f6"}
        news = jobs["a1b2c3d4e5f6"]
        assert (news.name, news.schedule, news.deliver, news.enabled) == (
            "news",
            "0 9 * * *",
            "origin",
            True,
        )
        assert news.origin is not None and news.owner == "telegram:dm:4242"
        assert news.next_run == datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
        disk = jobs["b1b2c3d4e5f6"]
        assert not disk.enabled and disk.schedule.startswith("every 30m from ")
        assert disk.parsed.next_run(NOW) == NOW + timedelta(minutes=10)  # its rhythm kept
        assert jobs["e1b2c3d4e5f6"].deliver == "telegram:4242"

        pairing = PairingManager(store)
        approved = {(a.platform, a.user_id, a.user_name) for a in await pairing.list_approved()}
        assert approved == {
            ("telegram", "4242", "alice"),
            ("telegram", "777", "bob"),
            ("discord", "555", "carol"),
        }

        again = await run_import(store, source.path)
        assert again.nothing_new and again.lines()[0].startswith("Nothing new")
        assert len(await store.list_sessions()) == 2 and len(await cron.list()) == 3
        assert len(await store.get_messages(tg.id)) == 4

        # A revoked user and a removed job stay so; a job here keeps its id.
        await pairing.revoke("telegram", "777")
        await cron.remove("b1b2c3d4e5f6")
        # Hermes Agent went on in that chat: only the new messages come in.
        source.message("20261119_130000_bbbb", "user", "and the load?", at=T0 + 9000)
        source.close()
        third = await run_import(store, source.path)
        assert (third.sessions_new, third.sessions_updated, third.messages) == (0, 1, 1)
        assert (third.jobs, third.pairings, third.soul) == (0, 0, "")
        assert [m.content for m in await store.get_messages(tg.id)][-1] == "and the load?"
        assert not await pairing.is_approved("telegram", "777")
        assert await cron.get("b1b2c3d4e5f6") is None
    finally:
        await store.close()


async def test_a_title_used_here_gets_a_suffix_and_an_id_used_here_a_prefix(
    tmp_path: Path, hermes_home: Path
) -> None:
    source = HermesAgentHome(tmp_path / "ha")
    source.session("s1", "cli", started_at=T0, title="Plans")
    source.message("s1", "user", "hello", at=T0 + 1)
    source.close()
    store = await SessionStore.open(hermes_home / "hermes_tui.db")
    try:
        mine = await store.create_session(
            "local:dm:operator",
            platform="local",
            chat_type="dm",
            chat_id="operator",
            title="plans",
        )
        await store._db.run(
            lambda c: c.execute("UPDATE sessions SET id = 's1' WHERE id = ?", (mine.id,))
        )
        report = await run_import(store, source.path)
        assert report.sessions_new == 1
        imported = await store.get_session("hermes-s1")
        assert imported is not None and imported.title == "Plans (Hermes Agent)"
        active = await store.get_active_session("local:dm:operator")
        assert active is not None and active.id == "s1"  # the live one is still the live one
    finally:
        await store.close()


async def test_unreadable_files_are_named_and_the_rest_comes_in(
    tmp_path: Path, hermes_home: Path
) -> None:
    source = HermesAgentHome(tmp_path / "ha")
    source.approved("telegram", {"1": "one"})
    (source.path / "cron").mkdir()
    (source.path / "cron" / "jobs.json").write_text("{not json")
    (source.path / "state.db").write_bytes(b"this is not a database" * 100)
    store = await SessionStore.open(hermes_home / "hermes_tui.db")
    try:
        report = await run_import(store, source.path)
        assert report.pairings == 1
        assert any("jobs.json" in p for p in report.problems)
        assert any("state.db" in p for p in report.problems)
    finally:
        await store.close()


async def test_a_gateway_offers_the_import_once_and_uses_the_soul(
    tmp_path: Path, hermes_home: Path
) -> None:
    build_home(hermes_home)  # the shared ~/.hermes: Hermes Agent's files beside ours

    async def start_and_collect() -> tuple[Gateway, list[str]]:
        gateway = Gateway(make_config(hermes_home))
        sub = gateway.bus.subscribe(name="test")
        await gateway.start(local=False, adapters=[])
        assert gateway._offer is not None
        await gateway._offer
        notices = []
        while (event := sub.get_nowait()) is not None:
            if isinstance(event, ev.Notice):
                notices.append(event.text)
        return gateway, notices

    gateway, notices = await start_and_collect()
    try:
        assert notices == [
            "Found Hermes Agent data (3 sessions, 5 cron jobs, 3 pairings, SOUL.md): "
            "run `hermes import hermes-agent` to bring it in"
        ]
        assert gateway.store is not None
        await run_import(gateway.store, hermes_home)
    finally:
        await gateway.stop()
    gateway, notices = await start_and_collect()
    try:
        assert notices == []
        assert gateway.config.personality == "soul"
        assert gateway.config.personalities["soul"] == "You are Zed, terse and kind."
    finally:
        await gateway.stop()


@pytest.mark.slow
def test_the_command_imports_and_a_second_run_finds_nothing_new(
    tmp_path: Path, hermes_home: Path
) -> None:
    source = build_home(tmp_path / "hermes-agent")
    before = checksums(source.path)
    env = {**os.environ, "HERMES_HOME": str(hermes_home), "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "hermes_tui.cli",
        "import",
        "hermes-agent",
        "--from",
        str(source.path),
    ]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert "2 new session(s) with 6 message(s)" in first.stdout
    assert "SOUL.md imported" in first.stdout
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0 and second.stdout.startswith("Nothing new"), second.stdout
    assert checksums(source.path) == before


async def test_a_participants_group_session_comes_in_as_theirs(
    tmp_path: Path, hermes_home: Path
) -> None:
    """Hermes Agent keeps group sessions per participant by default: imported, such a session
    is that member's here too (they can /resume it in the group), a shared one the group's."""
    source = HermesAgentHome(tmp_path / "ha")
    group = {"chat_id": "-100777", "chat_type": "group", "display_name": "Team"}
    source.session("mine", "telegram", started_at=T0, user_id="7", per_user=True, **group)
    source.session("ours", "telegram", started_at=T0 + 5, user_id="8", **group)
    source.session(
        "topic", "telegram", started_at=T0 + 9, user_id="8", thread_id="8", **group
    )  # a shared topic whose id happens to be a member's
    for sid in ("mine", "ours", "topic"):
        source.message(sid, "user", f"hello from {sid}", at=T0 + 10)
    source.close()
    store = await SessionStore.open(hermes_home / "hermes_tui.db")
    try:
        report = await run_import(store, source.path)
        assert report.sessions_new == 3
        keys = {
            sid: (await store.get_session(sid)).session_key for sid in ("mine", "ours", "topic")
        }  # type: ignore[union-attr]
        assert keys == {
            "mine": "telegram:group:-100777:@7",
            "ours": "telegram:group:-100777",
            "topic": "telegram:group:-100777:8",
        }
    finally:
        await store.close()
