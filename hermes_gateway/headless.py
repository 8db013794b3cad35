"""``hermes gateway run``: the same gateway with no screen, for servers and services."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterable, Sequence

from hermes_gateway import events as ev
from hermes_gateway.config import Config
from hermes_gateway.features import Feature
from hermes_gateway.gateway import Gateway
from hermes_gateway.logging_setup import setup_logging

log = logging.getLogger("hermes.gateway")


def describe(event: ev.GatewayEvent, features: Iterable[Feature] = ()) -> tuple[int, str] | None:
    """One log line for the events an operator of a headless gateway wants to see.

    Core events are described here; each feature describes its own.
    """
    for feature in features:
        if isinstance(event, feature.event_types):
            return feature.describe(event)
    match event:
        case ev.PlatformStatus(platform=p, state=s, detail=d, retry_in=r):
            retry = f" (retry in {r:.0f}s)" if r else ""
            level = logging.ERROR if s == "failed" else logging.INFO
            return level, f"platform {p}: {s}{': ' + d if d else ''}{retry}"
        case ev.SessionChanged(session_key=k, reason=r, session_id=i):
            return logging.INFO, f"session {k}: {r} ({i})"
        case ev.TurnFinished(session_key=k, error=e, interrupted=x, duration=d):
            state = f"error: {e}" if e else "interrupted" if x else "done"
            return logging.INFO, f"turn in {k}: {state} in {d:.2f}s"
        case ev.Notice(text=t, level=lv, session_key=k):
            return logging.WARNING if lv != "info" else logging.INFO, f"{k or 'gateway'}: {t}"
        case ev.EventsDropped(count=c):
            return logging.WARNING, f"log subscriber dropped {c} events"
    return None


async def run_headless(
    config: Config,
    *,
    features: Sequence[Feature] = (),
    stop_event: asyncio.Event | None = None,
    stderr_level: int | None = logging.INFO,
) -> int:
    """Run until a signal (or ``stop_event``); ``stderr_level`` None: no log lines on stderr."""
    setup_logging(
        config.paths.logs_dir,
        stderr=stderr_level is not None,
        level=min(logging.INFO, stderr_level or logging.INFO),
        stderr_level=stderr_level,
    )
    stop = stop_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    # SIGHUP too: a closed SSH session or terminal must stop the gateway cleanly (store
    # closed, turns ended), not kill it where it stands.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    log.debug(
        "home %s, database %s, features %s",
        config.paths.home,
        config.paths.database,
        ", ".join(f.name for f in features) or "none",
    )
    gateway = Gateway(config, features=features)
    sub = gateway.bus.subscribe(name="headless-log")
    logger = asyncio.create_task(_log_events(sub, features), name="headless-log")
    try:
        await gateway.start(local=False)
        if not config.model.configured:
            log.warning(
                "no model configured: set model.base_url and model.name in %s",
                config.paths.config_file,
            )
        log.info("gateway running; Ctrl+C, SIGTERM or SIGHUP stops it")
        await stop.wait()
        log.info("stopping...")
    finally:
        await gateway.stop()
        sub.close()
        logger.cancel()
    return 0


async def _log_events(sub: ev.Subscription, features: Sequence[Feature]) -> None:
    async for event in sub:
        line = describe(event, features)
        if line is not None:
            log.log(*line)
