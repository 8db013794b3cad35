"""Cron delivery through the real Telegram adapter (python-telegram-bot against FakeTelegram):
the home channel and an explicit chat, through the shared delivery router."""

from __future__ import annotations

from datetime import UTC, datetime

from hermes_cron.clock import ManualClock
from hermes_cron.events import CronRunFinished
from hermes_gateway import events as ev
from hermes_tui.assembly import build_gateway
from tests.conftest import make_config
from tests.fakes.telegram_server import FakeTelegram
from tests.helpers import Recorder

HOME = -100777
DM = 42


async def test_cron_answer_reaches_the_telegram_home_channel_and_a_chat(hermes_home, fake_openai):
    async with FakeTelegram() as tg:
        config = make_config(
            hermes_home,
            fake_openai,
            TELEGRAM_BOT_TOKEN=tg.token,
            TELEGRAM_BASE_URL=tg.base_url,
            TELEGRAM_BASE_FILE_URL=tg.base_file_url,
            TELEGRAM_HOME_CHANNEL=str(HOME),
            GATEWAY_ALLOW_ALL_USERS="true",
            HERMES_TIMEZONE="UTC",
        )
        t = config.platforms.telegram
        t.poll_timeout, t.rate_interval, t.global_rate = 1.0, 0.003, 0.0
        gateway = build_gateway(config, clock=ManualClock(datetime(2026, 3, 2, 8, tzinfo=UTC)))
        rec = Recorder(gateway.bus)
        await gateway.start(local=False)
        try:
            assert gateway.cron is not None
            await rec.wait_for(
                lambda: any(
                    e.platform == "telegram" and e.state == "connected"
                    for e in rec.of(ev.PlatformStatus)
                )
            )
            job = await gateway.cron.add(
                "every 1d", "the weather please", name="Weather", deliver=f"telegram,telegram:{DM}"
            )
            await gateway.cron.run_now(job.id)
            await rec.wait_for(lambda: bool(rec.of(CronRunFinished)))
            (done,) = rec.of(CronRunFinished)
            assert (done.status, done.delivery_status) == ("ok", "ok"), done
            for chat in (HOME, DM):
                (message,) = tg.messages_in(chat)
                assert message.plain_text == "⏰ Weather\n\necho: the weather please"
        finally:
            await gateway.stop()
