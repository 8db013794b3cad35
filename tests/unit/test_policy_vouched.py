"""``AccessPolicy.vouched``: who may change the gateway for everyone (``/sethome``). Let in by
name (an allowlisted id, an allowed Discord role, a pairing) counts; let in as "anyone" (the
allow-all flags, ``*``) does not; the terminal always does."""

from __future__ import annotations

from pathlib import Path

from hermes_gateway.access.policy import AccessPolicy
from hermes_gateway.models import SessionSource
from tests.conftest import make_config


def policy(home: Path, **env: str) -> AccessPolicy:
    return AccessPolicy(make_config(home, None, **env))


def tg(user: str) -> SessionSource:
    return SessionSource("telegram", user, user_id=user)


async def test_named_users_are_vouched_for_and_everyone_else_is_not(hermes_home: Path) -> None:
    p = policy(hermes_home, TELEGRAM_ALLOWED_USERS="42", GATEWAY_ALLOWED_USERS="7")
    assert await p.vouched(tg("42")) and await p.vouched(tg("7"))
    assert not await p.vouched(tg("555"))
    assert await p.vouched(SessionSource("local", "operator"))


async def test_open_bots_let_everyone_talk_but_vouch_for_nobody(hermes_home: Path) -> None:
    for env in ({"TELEGRAM_ALLOW_ALL_USERS": "true"}, {"TELEGRAM_ALLOWED_USERS": "*"}):
        p = policy(hermes_home, **env)
        assert await p.is_allowed(tg("555"))
        assert not await p.vouched(tg("555")), env


async def test_roles_and_pairings_vouch(hermes_home: Path) -> None:
    p = policy(hermes_home, DISCORD_ALLOWED_ROLES="900")
    member = SessionSource("discord", "c1", "channel", user_id="12")
    assert await p.vouched(member, roles=("900",))
    assert not await p.vouched(member, roles=("901",))

    async def paired(source: SessionSource) -> bool:
        return source.user_id == "31"

    p.extra_checks.append(paired)
    assert await p.vouched(tg("31")) and not await p.vouched(tg("32"))
