"""Cron jobs in the store, their output files, settings, and the /cron argument parsing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hermes_cron.commands import format_job, parse_add_args
from hermes_cron.jobs import CronError, CronStore
from hermes_cron.runner import prune_outputs, read_answer, write_output
from hermes_cron.schedules import parse_schedule
from hermes_cron.settings import CronSettings
from hermes_cron.ticker import RunOutcome
from hermes_gateway.models import SessionSource
from hermes_gateway.store import SessionStore, latest_version
from tests.conftest import make_config

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
async def cron(tmp_path: Path) -> AsyncIterator[CronStore]:
    store = await SessionStore.open(tmp_path / "hermes_tui.db")
    yield CronStore(store)
    await store.close()


async def _add(cron: CronStore, schedule: str, name: str, **kw):
    return await cron.add(
        name=name, prompt=f"do {name}", schedule=parse_schedule(schedule, now=T0), now=T0, **kw
    )


async def test_schema_has_the_cron_tables(cron):
    assert latest_version() >= 4
    tables = await cron.store.read_sync(
        lambda c: {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    )
    assert {"cron_jobs", "cron_runs"} <= tables


async def test_add_stores_everything_and_survives_a_reopen(tmp_path, cron):
    origin = SessionSource(platform="telegram", chat_id="5", user_name="ann", thread_id="9")
    job = await _add(cron, "0 9 * * 1-5", "daily", deliver="origin", origin=origin, repeat=3)
    assert job.next_run == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert (job.deliver, job.repeat, job.runs, job.enabled) == ("origin", 3, 0, True)
    other = await CronStore.open(tmp_path / "hermes_tui.db")  # like the CLI, a second connection
    try:
        (again,) = await other.list()
        assert again.origin == origin and again.describe() == "every weekday at 09:00"
        assert again.session_key == f"cron:dm:{job.id}"
    finally:
        await other.close()


async def test_add_rejects_bad_values(cron):
    with pytest.raises(CronError, match="repeat"):
        await _add(cron, "every 1h", "x", repeat=0)
    past = parse_schedule("2026-03-01T08:00", now=T0, allow_past=True)
    with pytest.raises(CronError, match="future"):
        await cron.add(name="x", prompt="p", schedule=past, now=T0)


async def test_find_by_id_prefix_and_name(cron):
    a = await _add(cron, "every 1h", "Backup check")
    b = await _add(cron, "every 2h", "Backup report")
    assert (await cron.find(a.id)).id == a.id
    assert (await cron.find(a.id[:5])).id == a.id
    assert (await cron.find("backup CHECK")).id == a.id
    with pytest.raises(CronError, match="several"):
        await cron.find("backup")
    with pytest.raises(CronError, match="No job"):
        await cron.find("nothing")
    assert b.id != a.id


async def test_pause_resume_skips_the_paused_time(cron):
    job = await _add(cron, "every 1h", "hourly")
    paused = await cron.pause(job.id, T0)
    assert not paused.enabled and paused.state == "paused"
    resumed = await cron.resume(job.id, T0 + timedelta(hours=5, minutes=10))
    assert resumed.enabled and resumed.next_run == T0 + timedelta(hours=6)
    one = await _add(cron, "in 30m", "once")
    with pytest.raises(CronError, match="passed"):
        await cron.resume(one.id, T0 + timedelta(hours=1))
    assert await cron.remove(job.id) and not await cron.remove(job.id)


def _outcome(text: str = "answer") -> RunOutcome:
    return RunOutcome("ok", text=text)


async def test_the_answer_is_read_back_from_an_output_file(cron, tmp_path):
    """The Cron pane shows a local run's answer after a restart from its file."""
    job = await _add(cron, "every 1h", "hourly")
    folder = tmp_path / "out" / job.id
    plain = write_output(folder, T0, job, "p", _outcome("# Report\nall good"), "schedule")
    tricky = write_output(folder, T0, job, "p", _outcome("a\n\n---\n\nb"), "manual")
    assert read_answer(plain) == "# Report\nall good"
    assert read_answer(tricky) == "a\n\n---\n\nb"  # a rule inside the answer is kept
    (folder / "notes.md").write_text("someone's file\n---\n\nnot ours")
    assert read_answer(folder / "notes.md") is None and read_answer(folder / "gone.md") is None


async def test_output_files_are_written_never_overwritten_and_pruned(cron, tmp_path):
    job = await _add(cron, "every 1h", "hourly")
    folder = tmp_path / "out" / job.id
    first = write_output(folder, T0, job, job.prompt, _outcome("# Report\nall good"), "schedule")
    second = write_output(folder, T0, job, job.prompt, _outcome(), "manual")
    assert first.name == "2026-03-02T08-00-00Z.md" and second.name == "2026-03-02T08-00-00Z-2.md"
    text = first.read_text()
    assert text.startswith("# hourly\n") and "all good" in text and "every hour" in text
    for hours in range(1, 6):
        write_output(folder, T0 + timedelta(hours=hours), job, "p", _outcome(), "schedule")
    foreign = folder / "notes.md"
    foreign.write_text("mine")
    removed = prune_outputs(folder, keep=3, max_age=None, now=T0 + timedelta(hours=6))
    names = sorted(p.name for p in folder.iterdir())
    assert removed == 4
    assert names == [
        "2026-03-02T11-00-00Z.md",
        "2026-03-02T12-00-00Z.md",
        "2026-03-02T13-00-00Z.md",
        "notes.md",
    ]
    prune_outputs(folder, keep=10, max_age=timedelta(hours=1), now=T0 + timedelta(hours=6))
    assert sorted(p.name for p in folder.iterdir()) == ["2026-03-02T13-00-00Z.md", "notes.md"]


def test_settings_from_config_and_environment(hermes_home):
    config = make_config(
        hermes_home,
        HERMES_TIMEZONE="Europe/Berlin",
        HERMES_CRON_GRACE_MINUTES="5",
        HERMES_CRON_OUTPUT_KEEP="7",
    )
    settings = CronSettings.from_config(config)
    assert (settings.timezone, settings.grace, settings.output_keep) == (
        "Europe/Berlin",
        timedelta(minutes=5),
        7,
    )
    assert CronSettings.from_config(make_config(hermes_home, TZ="Nowhere/City")).timezone
    from hermes_gateway.config import ConfigError

    with pytest.raises(ConfigError, match=r"cron\.timezone.*Mars/Base.*not a known time zone"):
        make_config(hermes_home, HERMES_TIMEZONE="Mars/Base", TZ="UTC")
    off = make_config(hermes_home, HERMES_CRON_ENABLED="false")
    assert not CronSettings.from_config(off).enabled


@pytest.mark.parametrize(
    ("args", "schedule", "prompt", "options"),
    [
        ('"every 2h" check the disks', "every 2h", "check the disks", {}),
        ("every 2h check the disks", "every 2h", "check the disks", {}),
        ("0 9 * * 1-5 morning news", "0 9 * * 1-5", "morning news", {}),
        ("in 45m tea", "in 45m", "tea", {}),
        (
            '--name Tea --deliver telegram:5 --repeat 2 "in 45m" tea',
            "in 45m",
            "tea",
            {"name": "Tea", "deliver": "telegram:5", "repeat": "2"},
        ),
        ("--name=Big “every 1d” big", "every 1d", "big", {"name": "Big"}),
    ],
)
def test_parse_add_args(args, schedule, prompt, options):
    assert parse_add_args(args, tz="UTC", now=T0) == (schedule, prompt, options)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("30m check", "ambiguous"),
        ('"every 2h check', "closing quote"),
        ("--colour red every 2h x", "Unknown option"),
        ("tomorrow morning please", "quotes"),
    ],
)
def test_parse_add_args_errors(args, message):
    with pytest.raises(CronError, match=message):
        parse_add_args(args, tz="UTC", now=T0)


async def test_format_job_line(cron):
    job = await _add(cron, "every 1h", "hourly", repeat=5)
    line = format_job(job, T0 + timedelta(minutes=20))
    assert line == f"- **hourly** `{job.id}` · every hour · → local · 0/5 runs · next in 40 min"
    job.last_status, job.last_error = "error", "model down"
    job.last_delivery_status, job.last_delivery_error = "failed", "telegram: blocked"
    plain = format_job(job, T0, running=True, markdown=False)
    assert "running now" in plain and "last error (model down)" in plain
    assert "delivery failed (telegram: blocked)" in plain
