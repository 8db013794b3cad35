"""Signal envelopes without sockets: what is a message for the bot, and what it becomes."""

from __future__ import annotations

from hermes_gateway.config import SignalConfig
from hermes_gateway.platforms.signal.inbound import SignalInbound, group_recipient

BOT = "+15550001111"


def envelope(**data):
    base = {"timestamp": data.pop("ts", 1700000000000), "message": "hi"}
    base.update(data)
    return {
        "account": BOT,
        "envelope": {
            "sourceNumber": "+15551230001",
            "sourceUuid": "0b6c1a2e-1111-4222-8333-944455556666",
            "sourceName": "Alice",
            "timestamp": base["timestamp"],
            "dataMessage": base,
        },
    }


def inbound(**cfg):
    return SignalInbound(SignalConfig(account=BOT, **cfg), "signal")


def test_a_dm_and_its_identity():
    parsed = inbound().parse(envelope())
    assert parsed is not None
    event = parsed.event
    assert (event.text, event.message_id) == ("hi", "+15551230001:1700000000000")
    assert (event.source.chat_type, event.source.chat_id, event.source.user_name) == (
        "dm",
        "+15551230001",
        "Alice",
    )


def test_the_same_envelope_twice_is_taken_once():
    parser = inbound()
    assert parser.parse(envelope()) is not None
    assert parser.parse(envelope()) is None
    assert parser.parse(envelope(ts=1700000000001)) is not None


def test_what_is_not_a_message():
    parser = inbound()
    own = envelope()
    own["envelope"]["sourceNumber"] = BOT
    assert parser.parse(own) is None
    other_account = envelope()
    other_account["account"] = "+19999999999"
    assert parser.parse(other_account) is None
    assert parser.parse(envelope(ts=2, reaction={"emoji": "👍"})) is None
    assert parser.parse(envelope(ts=3, message="")) is None
    sync = {
        "account": BOT,
        "envelope": {"sourceNumber": "+1555", "timestamp": 4, "syncMessage": {}},
    }
    assert parser.parse(sync) is None
    story = envelope(ts=5)
    story["envelope"]["storyMessage"] = {}
    assert parser.parse(story) is None
    assert inbound(ignore_stories=False).parse(story) is not None
    assert parser.parse({"error": "boom"}) is None
    assert parser.parse({"envelope": "garbage"}) is None


def test_groups_need_allowing_and_mentions_when_required():
    group = "aGVsbG8gd29ybGQgZ3JvdXAgaWQ="
    info = {"groupId": group, "type": "DELIVER"}
    assert inbound().parse(envelope(groupInfo=info)) is None
    allowed = inbound(group_allowed_users=[group]).parse(envelope(groupInfo=info))
    assert allowed is not None
    assert allowed.event.source.chat_id == group_recipient(group)
    assert allowed.event.source.chat_type == "group" and allowed.event.mentioned
    by_send_id = inbound(group_allowed_users=[group_recipient(group)]).parse(
        envelope(groupInfo=info)
    )
    assert by_send_id is not None
    strict = inbound(group_allowed_users=["*"], require_mention=True)
    quiet = strict.parse(envelope(groupInfo=info))
    assert quiet is not None and not quiet.event.mentioned
    mention = {"number": BOT, "uuid": "u", "start": 0, "length": 1, "name": BOT}
    other = {"number": "+1555", "uuid": "v", "start": 6, "length": 1, "name": "Bob"}
    loud = strict.parse(
        envelope(
            ts=9, groupInfo=info, message="\ufffc ask \ufffc about x", mentions=[mention, other]
        )
    )
    assert loud is not None and loud.event.mentioned
    assert loud.event.text == "ask @Bob about x"


def test_hermes_agent_config_sections_are_read(tmp_path):
    from hermes_gateway.config import load_config
    from hermes_gateway.paths import HermesPaths

    (tmp_path / "config.yaml").write_text(
        "signal:\n  require_mention: true\n"
        "platforms:\n"
        "  signal:\n    extra:\n      http_url: http://127.0.0.1:8080\n      account: '+1555'\n"
        "      group_allow_from: ['*']\n"
        "  sms:\n    enabled: false\n"
    )
    config = load_config(HermesPaths(tmp_path), {"HERMES_HOME": str(tmp_path)})
    sig = config.platforms.signal
    assert (sig.require_mention, sig.http_url, sig.account) == (
        True,
        "http://127.0.0.1:8080",
        "+1555",
    )
    assert sig.group_allowed_users == ["*"]
    assert config.platforms.sms.enabled is False
    honoured = {r.key for r in config.report if r.status == "honoured"}
    assert {"signal.require_mention", "platforms.signal.extra.account"} <= honoured
