"""Home Assistant against the fake HA websocket API: the auth handshake, a conversation turn
answered through notify, who may talk, watched state changes, and a dropped socket."""

from __future__ import annotations

from hermes_gateway import events as ev
from tests.fakes.homeassistant_server import FakeHomeAssistant
from tests.integration.homeassistant_harness import ALICE, EVENT, MALLORY, homeassistant_gateway


def asked(fake_openai) -> list[str]:
    return [r["messages"][-1]["content"] for r in fake_openai.requests]


async def test_auth_ok_subscribes_once_and_a_turn_is_answered_by_notify(hermes_home, fake_openai):
    async with homeassistant_gateway(hermes_home, fake_openai) as h:
        assert h.fake.auths == [True]
        assert h.fake.subscriptions == [EVENT]
        await h.say("is the garage door open?")
        assert await h.wait_notified(1) == ["echo: is the garage door open?"]
        call = h.fake.service_calls[0]
        assert call.data == {"message": "echo: is the garage door open?", "title": "Hermes"}
        ids = [c["id"] for c in h.fake.commands]
        assert ids == sorted(set(ids))  # increasing, never reused
        assert f"homeassistant:dm:{ALICE}" in h.runner.sessions


async def test_invalid_token_is_one_clear_failure_naming_hass_token(hermes_home, fake_openai):
    async with homeassistant_gateway(
        hermes_home, fake_openai, HASS_TOKEN="stale-token", wait_connected=False
    ) as h:
        await h.wait_state("failed")
        failed = [s for s in h.states() if s[0] == "failed"]
        assert len(failed) == 1
        assert "HASS_TOKEN" in failed[0][1] and "stale-token" not in failed[0][1]
        assert "Invalid access token" in failed[0][1]
        assert h.fake.auths == [False]
        assert not [s for s in h.states() if s[0] == "reconnecting"]


async def test_unauthorised_ha_user_never_reaches_the_agent(hermes_home, fake_openai):
    async with homeassistant_gateway(hermes_home, fake_openai) as h:
        since = len(h.recorder.events)
        await h.say("unlock the front door", user=MALLORY)
        denied = await h.recorder.event(ev.AccessDenied, since=since)
        assert denied.session_key == f"homeassistant:dm:{MALLORY}"
        since = len(h.recorder.events)
        await h.say("and without a user", user=None)
        await h.recorder.event(ev.AccessDenied, since=since)
        assert fake_openai.requests == []
        assert not any("echo" in m for m in h.notified())


async def test_conversation_ids_are_the_users_own_sessions(hermes_home, fake_openai):
    fake = FakeHomeAssistant(services=("notify.mobile_app_alice",))
    async with (
        fake,
        homeassistant_gateway(
            hermes_home, fake_openai, fake=fake, HASS_ALLOWED_USERS=f"{ALICE},{MALLORY}"
        ) as h,
    ):
        await h.say("kitchen talk", conversation_id="kitchen", notify="mobile_app_alice")
        assert await h.wait_notified(1, "mobile_app_alice") == ["echo: kitchen talk"]
        # Another user naming the same conversation id gets a session of their own.
        await h.say("me too", user=MALLORY, conversation_id="kitchen")
        assert await h.wait_notified(1) == ["echo: me too"]
        keys = set(h.runner.sessions)
        assert f"homeassistant:dm:{ALICE}:kitchen" in keys
        assert f"homeassistant:dm:{MALLORY}:kitchen" in keys
        # A notify target outside the notify domain is ignored: the default is used.
        await h.say("sneaky", notify="persistent_notification.create")
        assert await h.wait_notified(2) == ["echo: me too", "echo: sneaky"]


async def test_dropped_socket_reconnects_and_answers_without_duplicates(hermes_home, fake_openai):
    async with homeassistant_gateway(hermes_home, fake_openai) as h:
        await h.say("before the drop")
        assert await h.wait_notified(1) == ["echo: before the drop"]
        h.fake.refuse = True
        await h.fake.drop()
        await h.wait_state("reconnecting")
        h.fake.refuse = False
        await h.wait_state("connected")
        assert h.adapter.connections == 2
        assert h.fake.subscriptions == [EVENT]  # one live subscription, not two
        await h.say("after the drop")
        assert await h.wait_notified(2) == ["echo: before the drop", "echo: after the drop"]
        assert asked(fake_openai) == ["before the drop", "after the drop"]
        assert h.fake.auths == [True, True]


async def test_watched_state_changes_reach_the_agent_with_cooldown(hermes_home, fake_openai):
    (hermes_home / "config.yaml").write_text(
        "platforms:\n  homeassistant:\n    watch_domains: [binary_sensor]\n"
        "    cooldown_seconds: 3600\n"
    )
    async with homeassistant_gateway(hermes_home, fake_openai) as h:
        assert sorted(h.fake.subscriptions) == sorted([EVENT, "state_changed"])
        await h.fake.state_change(
            "binary_sensor.front_door", "off", "on", friendly_name="Front door"
        )
        await h.fake.state_change("light.kitchen", "off", "on")  # not watched
        await h.fake.state_change("binary_sensor.front_door", "on", "off")  # cooldown
        notes = await h.wait_notified(1)
        assert notes == [
            "echo: [Home Assistant] Front door (binary_sensor.front_door) changed from off to on"
        ]
        assert len(fake_openai.requests) == 1


async def test_a_missing_notify_service_fails_that_answer_only(hermes_home, fake_openai):
    fake = FakeHomeAssistant(services=("notify.mobile_app_alice",))
    async with fake, homeassistant_gateway(hermes_home, fake_openai, fake=fake) as h:
        await h.say("first", notify="mobile_app_gone")
        await h.runner.wait_idle(10)
        assert h.notified("mobile_app_gone") == []
        await h.say("second", notify="mobile_app_alice")
        assert await h.wait_notified(1, "mobile_app_alice") == ["echo: second"]
        assert h.states()[-1][0] == "connected"


async def test_an_answer_finished_while_the_socket_is_down_is_sent_after_reconnect(
    hermes_home, fake_openai
):
    from tests.fakes.openai_server import ScriptedReply

    fake_openai.enqueue(ScriptedReply(text="slow answer", first_token_delay=1.0))
    async with homeassistant_gateway(hermes_home, fake_openai) as h:
        await h.say("take your time")
        await fake_openai.wait_for_requests(1)
        h.fake.refuse = True
        await h.fake.drop()
        await h.wait_state("reconnecting")
        await fake_openai.wait_until(lambda: fake_openai.active_streams == 0, 10)
        h.fake.refuse = False
        assert await h.wait_notified(1) == ["slow answer"]
        assert h.adapter.connections == 2
        assert len(fake_openai.requests) == 1
