"""Event hooks (HERMES_HOME/hooks/<name>/HOOK.yaml + handler.py) through a real gateway: the
Telegram adapter against FakeTelegram, the agent against the fake model.

What is checked: the context each Hermes Agent event carries (as the handler received it),
the order of events, ``command:*`` decisions, and every way a hook can fail (raise, hang sync,
hang async, block its loop, missing files, bad YAML, import error, no ``handle``), each one
reported while the chat keeps being answered.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from hermes_gateway import events as ev
from hermes_gateway.hooks import HookFailed, HooksFeature, HooksLoaded
from hermes_tui.assembly import build_gateway
from tests.fakes.openai_server import ScriptedReply, ToolCallSpec
from tests.helpers import Recorder
from tests.integration.pairing_harness import PairingHarness, pairing_config

USER = 42


def write_hook(home: Path, folder: str, manifest: str | None, handler: str | None) -> Path:
    hook = home / "hooks" / folder
    hook.mkdir(parents=True)
    if manifest is not None:
        (hook / "HOOK.yaml").write_text(textwrap.dedent(manifest))
    if handler is not None:
        (hook / "handler.py").write_text(textwrap.dedent(handler))
    return hook


RECORDER = """
    import json
    from pathlib import Path

    LOG = Path(__file__).parent / "calls.jsonl"

    def handle(event_type, context):
        with LOG.open("a") as f:
            f.write(json.dumps({"event": event_type, "context": context}) + "\\n")
"""


def calls(hook: Path) -> list[dict]:
    log = hook / "calls.jsonl"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def hooks_of(h: PairingHarness) -> HooksFeature:
    feature = h.gw.feature("hooks")
    assert isinstance(feature, HooksFeature) and feature.dispatcher is not None
    return feature


async def start(hermes_home, fake_openai, tg) -> PairingHarness:
    config = pairing_config(hermes_home, fake_openai, tg, TELEGRAM_ALLOWED_USERS=str(USER))
    return await PairingHarness.start(config, tg)


async def test_a_hook_gets_each_event_with_hermes_context(hermes_home, fake_openai, tg):
    hook = write_hook(
        hermes_home,
        "recorder",
        """
        name: recorder
        description: writes every event it gets
        events: [gateway:startup, session:start, session:end, session:reset,
                 agent:start, agent:step, agent:end, "command:*"]
        """,
        RECORDER,
    )
    fake_openai.enqueue(
        ScriptedReply(tool_calls=[ToolCallSpec("session_search", {"query": "tomatoes"})]),
        ScriptedReply(text="Nothing about tomatoes yet."),
    )
    h = await start(hermes_home, fake_openai, tg)
    try:
        hooks = hooks_of(h)
        (loaded,) = h.rec.of(HooksLoaded)
        assert [i.name for i in loaded.hooks] == ["recorder"] and loaded.problems == ()
        tg.inject_message(USER, "any notes on tomatoes?", user_id=USER, first_name="Ann")
        await h.message_to(USER, "Nothing about tomatoes yet.")
        tg.inject_message(USER, "/new", user_id=USER)
        await h.message_to(USER, "New session started")
        await h.rec.event(ev.CommandReplied)
        await hooks.dispatcher.idle()
    finally:
        await h.stop()

    got = calls(hook)
    assert [c["event"] for c in got] == [
        "gateway:startup",
        "session:start",
        "agent:start",
        "agent:step",
        "agent:step",
        "agent:end",
        "command:new",
        "session:end",
        "session:reset",
    ]
    by = {c["event"]: c["context"] for c in got}
    assert by["gateway:startup"] == {"platforms": ["telegram"]}
    key = f"telegram:dm:{USER}"
    start_ctx = by["session:start"]
    assert start_ctx == {
        "platform": "telegram",
        "user_id": str(USER),
        "session_id": start_ctx["session_id"],
        "session_key": key,
    }
    first_session = start_ctx["session_id"]
    agent = by["agent:start"]
    assert {k: agent[k] for k in ("platform", "user_id", "chat_id", "thread_id", "chat_type")} == {
        "platform": "telegram",
        "user_id": str(USER),
        "chat_id": str(USER),
        "thread_id": "",
        "chat_type": "dm",
    }
    assert agent["session_id"] == first_session
    assert agent["message"] == "any notes on tomatoes?"
    steps = [c["context"] for c in got if c["event"] == "agent:step"]
    assert [(s["iteration"], s["tool_names"]) for s in steps] == [(1, []), (2, ["session_search"])]
    assert steps[1]["tools"][0]["name"] == "session_search"
    assert json.loads(steps[1]["tools"][0]["arguments"]) == {"query": "tomatoes"}
    assert isinstance(steps[1]["tools"][0]["result"], str)
    assert all(s["session_id"] == first_session for s in steps)
    end = by["agent:end"]
    assert end["response"] == "Nothing about tomatoes yet."
    assert end["message"] == agent["message"] and end["session_id"] == first_session
    command = by["command:new"]
    assert {k: command[k] for k in ("platform", "user_id", "command", "raw_command", "args")} == {
        "platform": "telegram",
        "user_id": str(USER),
        "command": "new",
        "raw_command": "new",
        "args": "",
    }
    assert by["session:end"]["session_id"] == first_session
    assert by["session:reset"]["session_id"] != first_session
    assert by["session:reset"]["session_key"] == key and by["session:reset"]["reason"] == "new"


async def test_command_hooks_deny_answer_and_rewrite(hermes_home, fake_openai, tg):
    write_hook(
        hermes_home,
        "policy",
        """
        name: policy
        events: ["command:*"]
        """,
        """
        async def handle(event_type, context):
            if context["command"] == "title":
                return {"decision": "deny", "message": "Titles are set by the admin."}
            if context["command"] == "status":
                return {"decision": "rewrite", "command_name": "help", "raw_args": ""}
            if context["command"] == "usage":
                return {"decision": "handled", "message": "usage: ask the admin"}
            return None
        """,
    )
    h = await start(hermes_home, fake_openai, tg)
    try:
        tg.inject_message(USER, "/title Secret plans", user_id=USER)
        await h.message_to(USER, "Titles are set by the admin.")
        tg.inject_message(USER, "/status", user_id=USER)
        await h.message_to(USER, "/resume")  # /help's list, not /status's
        tg.inject_message(USER, "/usage", user_id=USER)
        await h.message_to(USER, "usage: ask the admin")
        tg.inject_message(USER, "/sessions", user_id=USER)  # a hook's None lets it run
        await h.message_to(USER, "No sessions yet")
    finally:
        await h.stop()
    texts = h.texts(USER)
    assert not any("Title set" in t for t in texts)
    assert not any("**Model:**" in t or "Model:" in t for t in texts)


FAILING = {
    "raises": (
        "events: [agent:start]\n",
        "def handle(event_type, context):\n    raise ValueError('no database here')\n",
    ),
    "hangs": (
        "events: [agent:start, agent:end]\ntimeout: 0.5\n",
        textwrap.dedent(
            """
            import time
            from pathlib import Path

            HERE = Path(__file__).parent

            def handle(event_type, context):
                (HERE / "entered").touch()
                while not (HERE / "release").exists():
                    time.sleep(0.02)
            """
        ),
    ),
    "hangs-async": (
        "events: [agent:start]\ntimeout: 0.5\n",
        "import asyncio\n\nasync def handle(event_type, context):\n    await asyncio.sleep(3600)\n",
    ),
    "blocks-loop": (
        "events: [agent:end]\ntimeout: 0.5\n",
        textwrap.dedent(
            """
            import time
            from pathlib import Path

            HERE = Path(__file__).parent

            async def handle(event_type, context):
                while not (HERE / "release").exists():
                    time.sleep(0.02)
            """
        ),
    ),
    "no-handler": ("events: [agent:start]\n", None),
    "no-manifest": (None, "def handle(e, c):\n    pass\n"),
    "bad-yaml": ("events: [agent:start\nname: : :\n", "def handle(e, c):\n    pass\n"),
    "no-events": ("name: no-events\n", "def handle(e, c):\n    pass\n"),
    "import-error": ("events: [agent:start]\n", "import not_a_module_anywhere\n"),
    "no-handle": ("events: [agent:start]\n", "def other(e, c):\n    pass\n"),
}


@pytest.fixture
def failing_hooks(hermes_home: Path):
    folders = {name: write_hook(hermes_home, name, m, h) for name, (m, h) in FAILING.items()}
    good = write_hook(hermes_home, "zz-good", "events: [agent:start, agent:end]\n", RECORDER)
    yield folders, good
    for folder in folders.values():
        (folder / "release").touch()  # let the stuck threads end


async def test_failing_hooks_are_reported_and_never_hold_the_chat(
    hermes_home, fake_openai, tg, failing_hooks
):
    folders, good = failing_hooks
    h = await start(hermes_home, fake_openai, tg)
    try:
        (loaded,) = h.rec.of(HooksLoaded)
        assert sorted(i.name for i in loaded.hooks) == sorted(
            ["raises", "hangs", "hangs-async", "blocks-loop", "zz-good"]
        )
        problems = {p.name: p.error for p in loaded.problems}
        assert problems["no-handler"] == "missing handler.py"
        assert problems["no-manifest"] == "missing HOOK.yaml"
        assert problems["bad-yaml"].startswith("HOOK.yaml is not valid YAML at line")
        assert "declares no events" in problems["no-events"]
        assert "ModuleNotFoundError" in problems["import-error"]
        assert "not_a_module_anywhere" in problems["import-error"]
        assert "no handle(event_type, context)" in problems["no-handle"]

        tg.inject_message(USER, "first", user_id=USER)
        # Answered while the sync hook is provably still stuck inside agent:start.
        await h.message_to(USER, "echo: first")
        assert (folders["hangs"] / "entered").exists()
        assert not (folders["hangs"] / "release").exists()
        failed = [
            await h.rec.event(HookFailed, lambda e, n=name: e.hook == n)
            for name in ("raises", "hangs", "hangs-async", "blocks-loop")
        ]
        kinds = {f.hook: (f.kind, f.event) for f in failed}
        assert kinds == {
            "raises": ("raised", "agent:start"),
            "hangs": ("timeout", "agent:start"),
            "hangs-async": ("timeout", "agent:start"),
            "blocks-loop": ("timeout", "agent:end"),
        }
        assert failed[0].error == "ValueError: no database here (handler.py, line 2)"
        assert failed[1].error == "timed out after 0.5s"
        # The stuck hook's next call is skipped, not stacked on another thread.
        await h.rec.event(HookFailed, lambda e: e.hook == "hangs" and e.event == "agent:end")
        skipped = [e for e in h.rec.of(HookFailed) if e.hook == "hangs" and e.kind == "skipped"]
        assert skipped and skipped[0].event == "agent:end"
        # The good hook after them still ran, for both events.
        await hooks_of(h).dispatcher.idle()
        assert [c["event"] for c in calls(good)] == ["agent:start", "agent:end"]
        # Released, the hook works again (and the chat went on answering meanwhile).
        (folders["hangs"] / "release").touch()
        (folders["blocks-loop"] / "release").touch()
        await h.rec.wait_for(lambda: not hooks_of(h).dispatcher.calls.stuck("hangs"))
        since = len(h.rec.events)
        tg.inject_message(USER, "second", user_id=USER)
        await h.message_to(USER, "echo: second")
        await hooks_of(h).dispatcher.idle()
        again = [e for e in h.rec.events[since:] if isinstance(e, HookFailed)]
        assert {e.hook for e in again} == {"raises", "hangs-async"}
        assert hooks_of(h).dispatcher.last_error["hangs"].kind in ("timeout", "skipped")
    finally:
        await h.stop()


async def test_a_hermes_agent_hook_works_unchanged(tmp_path, fake_openai, tg, monkeypatch):
    """A hook as Hermes Agent's documentation writes one (async, logging under
    ``~/.hermes/hooks/<name>/``), in a Hermes home used as HERMES_HOME."""
    home = tmp_path / "user"
    hermes_home = home / ".hermes"
    hermes_home.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("HERMES_HOME", str(hermes_home))
    write_hook(
        hermes_home,
        "activity-log",
        """
        name: activity-log
        description: Log all agent activity to a file
        events:
          - agent:start
          - agent:end
          - agent:step
        """,
        """
        import json
        from datetime import datetime
        from pathlib import Path

        LOG_FILE = Path.home() / ".hermes" / "hooks" / "activity-log" / "activity.log"

        async def handle(event_type: str, context: dict):
            entry = {"timestamp": datetime.now().isoformat(), "event": event_type, **context}
            with open(LOG_FILE, "a") as f:
                f.write(json.dumps(entry) + "\\n")
        """,
    )
    h = await start(hermes_home, fake_openai, tg)
    try:
        tg.inject_message(USER, "hello from Hermes", user_id=USER)
        await h.message_to(USER, "echo: hello from Hermes")
        await hooks_of(h).dispatcher.idle()
    finally:
        await h.stop()
    log = hermes_home / "hooks" / "activity-log" / "activity.log"
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["event"] for e in entries] == ["agent:start", "agent:step", "agent:end"]
    assert entries[0]["message"] == "hello from Hermes" and entries[0]["platform"] == "telegram"
    assert entries[-1]["response"] == "echo: hello from Hermes"
    assert not h.rec.of(HookFailed)


async def test_no_hooks_folder_changes_nothing(hermes_home, fake_openai, tg):
    h = await start(hermes_home, fake_openai, tg)
    try:
        (loaded,) = h.rec.of(HooksLoaded)
        assert loaded.hooks == () and loaded.problems == ()
        assert h.gw.feature("hooks").describe(loaded) is None  # nothing to log
        tg.inject_message(USER, "hi", user_id=USER)
        await h.message_to(USER, "echo: hi")
    finally:
        await h.stop()


async def test_expiry_and_sys_exit_in_hooks(hermes_home, fake_openai):
    """A reset policy's expiry fires session:end/reset with its reason; a hook calling
    sys.exit() (plain or async) is one failure of that hook, and the hooks' loop goes on."""
    from tests.integration.test_session_reset import ANN, IDLE, reset_config, say
    from tests.integration.test_session_reset import start as start_reset

    sessions = write_hook(
        hermes_home, "sessions", "events: [session:start, session:end, session:reset]\n", RECORDER
    )
    write_hook(
        hermes_home,
        "exit-sync",
        "events: [agent:start]\n",
        "import sys\n\ndef handle(e, c):\n    sys.exit(3)\n",
    )
    write_hook(
        hermes_home,
        "exit-async",
        "events: [agent:start]\n",
        "import sys\n\nasync def handle(e, c):\n    sys.exit('bye')\n",
    )
    after = write_hook(
        hermes_home,
        "zz-after",
        "events: [agent:end]\n",
        """
        import json
        from pathlib import Path

        async def handle(event_type, context):
            with (Path(__file__).parent / "calls.jsonl").open("a") as f:
                f.write(json.dumps({"event": event_type, "context": context}) + "\\n")
        """,
    )
    gw, _chat, rec, clock = await start_reset(reset_config(hermes_home, fake_openai))
    try:
        dispatcher = gw.feature("hooks").dispatcher
        await say(gw, "remember the walrus")
        first = (await gw.store.get_active_session(ANN.session_key)).id
        clock.offset = IDLE + 1
        await say(gw, "back again")
        await dispatcher.idle()
        second = (await gw.store.get_active_session(ANN.session_key)).id
        exits = {e.hook: e for e in rec.of(HookFailed)}
        assert exits["exit-sync"].kind == "raised"
        assert exits["exit-sync"].error.startswith("SystemExit: 3")
        assert exits["exit-async"].error.startswith("SystemExit: bye")
    finally:
        rec.close()
        await gw.stop()
    got = [
        (c["event"], c["context"]["session_id"], c["context"].get("reason"))
        for c in calls(sessions)
    ]
    assert got == [
        ("session:start", first, None),
        ("session:end", first, "idle"),
        ("session:reset", second, "idle"),
        ("session:start", second, None),
    ]
    assert [c["context"]["response"] for c in calls(after)] == [
        "echo: remember the walrus",
        "echo: back again",
    ]


async def test_a_hook_stuck_at_stop_neither_holds_the_stop_nor_the_process(
    hermes_home, fake_openai, tg
):
    import threading

    stuck = write_hook(
        hermes_home,
        "stuck",
        "events: [agent:end]\ntimeout: 60\n",
        """
        import time
        from pathlib import Path

        HERE = Path(__file__).parent

        def handle(event_type, context):
            (HERE / "entered").touch()
            while not (HERE / "release").exists():
                time.sleep(0.02)
        """,
    )
    h = await start(hermes_home, fake_openai, tg)
    try:
        tg.inject_message(USER, "hi", user_id=USER)
        await h.message_to(USER, "echo: hi")
        await h.rec.wait_for(lambda: (stuck / "entered").exists())
    finally:
        await h.stop()  # waits at most the drain, not the hook's 60 s
        threads = [t for t in threading.enumerate() if t.name == "hook:stuck"]
        (stuck / "release").touch()
    assert threads and all(t.daemon for t in threads)  # cannot hold the process at exit


async def test_startup_names_only_the_platforms_that_connected(hermes_home, fake_openai, tg):
    """As in Hermes Agent, gateway:startup comes once the platforms are up, naming those that
    connected: a revoked Telegram token is not among them."""
    from tests.integration.test_telegram_adapter import telegram_config

    hook = write_hook(hermes_home, "startup", "events: [gateway:startup]\n", RECORDER)
    config = telegram_config(hermes_home, fake_openai, tg)
    config.platforms.telegram.token = "999:REVOKED"
    gw = build_gateway(config)
    rec = Recorder(gw.bus)
    await gw.start(local=True)
    try:
        await rec.event(ev.PlatformStatus, lambda e: e.state == "failed")
        await rec.wait_for(lambda: bool(calls(hook)))
    finally:
        rec.close()
        await gw.stop()
    assert [c["context"] for c in calls(hook)] == [{"platforms": []}]


def test_hermes_names_with_spaces_load_and_junk_names_do_not(hermes_home):
    from hermes_gateway.hooks.loader import load_hooks

    write_hook(hermes_home, "spaced", "name: My Audit Hook\nevents: [agent:end]\n", RECORDER)
    write_hook(hermes_home, "junk", 'name: "bad\\nname"\nevents: [agent:end]\n', RECORDER)
    write_hook(hermes_home, "twin", "name: My Audit Hook\nevents: [agent:end]\n", RECORDER)
    hooks, problems = load_hooks(hermes_home / "hooks")
    assert [h.info.name for h in hooks] == ["My Audit Hook"]
    assert {p.path.rsplit("/", 1)[-1]: p.error for p in problems} == {
        "junk": "HOOK.yaml: name must be one printable line of at most 100 characters",
        "twin": "another hook is already named 'My Audit Hook'",
    }
