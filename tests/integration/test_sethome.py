"""``/sethome`` through the real Telegram adapter (FakeTelegram): saved in HERMES_HOME/.env the
way Hermes Agent saves it (other lines kept, 0600), used by cron at once (no restart) and after
one, refused to strangers, to passers-by of an open bot, and in the terminal."""

from __future__ import annotations

import stat

from hermes_cron.events import CronRunFinished
from hermes_gateway import events as ev
from hermes_gateway.config import load_config
from hermes_gateway.models import MessageEvent, SessionSource
from hermes_gateway.paths import HermesPaths
from hermes_tui.assembly import build_gateway
from tests.conftest import make_config
from tests.integration.pairing_harness import STRANGER, PairingHarness, pairing_config

OWNER = 42
FORUM = -100555
ENV_BEFORE = (
    "# my Hermes settings\n"
    "export GITHUB_TOKEN='ghp_keep_me'\n"
    "\n"
    "TELEGRAM_HOME_CHANNEL=-100999\n"
    "# the end\n"
)


async def test_sethome_saves_the_chat_and_cron_delivers_there_at_once(hermes_home, fake_openai, tg):
    env_file = hermes_home / ".env"
    env_file.write_text(ENV_BEFORE)
    env_file.chmod(0o644)
    config = pairing_config(hermes_home, fake_openai, tg, TELEGRAM_ALLOWED_USERS=str(OWNER))
    assert config.platforms.telegram.home == "-100999"
    h = await PairingHarness.start(config, tg)
    try:
        tg.inject_message(OWNER, "/sethome", user_id=OWNER, first_name="Ann")
        reply = await h.message_to(OWNER, "home channel")
        assert "This chat is now the Telegram home channel" in reply.plain_text
        assert env_file.read_text() == ENV_BEFORE.replace("=-100999", "='42'")
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600

        # No restart: the next cron result for "telegram" lands in this chat.
        assert h.gw.cron is not None
        job = await h.gw.cron.add("every 1d", "the weather", name="Weather", deliver="telegram")
        await h.gw.cron.run_now(job.id)
        await h.rec.wait_for(lambda: bool(h.rec.of(CronRunFinished)))
        (done,) = h.rec.of(CronRunFinished)
        assert (done.status, done.delivery_status) == ("ok", "ok"), done
        await h.message_to(OWNER, "⏰ Weather")
        assert not tg.messages_in(-100999)

        # From a forum topic: the topic is saved too; from the DM again, it is cleared.
        tg.inject_message(
            FORUM,
            "/sethome",
            user_id=OWNER,
            chat_type="supergroup",
            message_thread_id=3,
            is_topic_message=True,
        )
        await h.message_to(FORUM, "home channel")
        text = env_file.read_text()
        assert f"TELEGRAM_HOME_CHANNEL='{FORUM}'\n" in text
        assert "TELEGRAM_HOME_CHANNEL_THREAD_ID='3'\n" in text
        assert config.platforms.telegram.home == f"{FORUM}:3"
        tg.inject_message(OWNER, "/sethome", user_id=OWNER)
        await h.rec.wait_for(lambda: len(h.texts(OWNER)) >= 3)
        text = env_file.read_text()
        assert "TELEGRAM_HOME_CHANNEL='42'\n" in text
        assert "TELEGRAM_HOME_CHANNEL_THREAD_ID=''\n" in text
        assert text.startswith("# my Hermes settings\nexport GITHUB_TOKEN='ghp_keep_me'\n\n")
    finally:
        await h.stop()

    # After a restart the saved home is read back.
    again = load_config(HermesPaths(hermes_home), {"HERMES_HOME": str(hermes_home)})
    assert again.platforms.telegram.home == str(OWNER)
    assert again.env["GITHUB_TOKEN"] == "ghp_keep_me"


async def test_a_stranger_never_reaches_sethome(hermes_home, fake_openai, tg):
    env_file = hermes_home / ".env"
    env_file.write_text(ENV_BEFORE)
    config = pairing_config(hermes_home, fake_openai, tg, TELEGRAM_ALLOWED_USERS=str(OWNER))
    h = await PairingHarness.start(config, tg)
    try:
        tg.inject_message(STRANGER, "/sethome", user_id=STRANGER, first_name="Mallory")
        await h.rec.event(ev.AccessDenied)
        assert not h.rec.of(ev.CommandReplied)
    finally:
        await h.stop()
    assert env_file.read_text() == ENV_BEFORE
    assert config.platforms.telegram.home == "-100999"


async def test_an_open_bot_refuses_sethome_to_a_passer_by(hermes_home, fake_openai, tg):
    """Open to everyone (allow-all): anyone may chat, but only a named user may redirect
    where cron results go."""
    env_file = hermes_home / ".env"
    env_file.write_text(ENV_BEFORE)
    config = pairing_config(
        hermes_home,
        fake_openai,
        tg,
        TELEGRAM_ALLOW_ALL_USERS="true",
        GATEWAY_ALLOWED_USERS=str(OWNER),
    )
    h = await PairingHarness.start(config, tg)
    try:
        tg.inject_message(-100777, "/sethome", user_id=555, chat_type="supergroup")
        reply = await h.message_to(-100777, "set the home channel")
        assert reply.plain_text.startswith("Only a user named in the allowlist")
        assert env_file.read_text() == ENV_BEFORE
        assert config.platforms.telegram.home == "-100999"
        tg.inject_message(-100777, "/sethome", user_id=OWNER, chat_type="supergroup")
        await h.message_to(-100777, "This chat is now the Telegram home channel")
        assert "TELEGRAM_HOME_CHANNEL='-100777'\n" in env_file.read_text()
    finally:
        await h.stop()


async def test_sethome_in_the_terminal_explains_where_it_works(hermes_home, fake_openai):
    gw = build_gateway(make_config(hermes_home, fake_openai))
    await gw.start(adapters=[])
    try:
        assert gw.runner is not None
        replies: list[ev.CommandReplied] = []
        remove = gw.bus.add_listener(
            lambda e: replies.append(e) if isinstance(e, ev.CommandReplied) else None
        )
        await gw.runner.handle(
            MessageEvent(text="/sethome", source=SessionSource("local", "operator"))
        )
        remove()
    finally:
        await gw.stop()
    (reply,) = replies
    assert not reply.ok and "works in a chat on Telegram" in reply.text
    assert not (hermes_home / ".env").exists()
