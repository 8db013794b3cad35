"""WhatsApp pieces without sockets: signatures, the handshake, formatting, notifications."""

from __future__ import annotations

import hashlib
import hmac

from hermes_gateway.platforms.whatsapp.format import markdown_to_whatsapp
from hermes_gateway.platforms.whatsapp.inbound import parse_notification
from hermes_gateway.platforms.whatsapp.signature import valid_signature, verify_challenge


def test_signature_is_hmac_sha256_of_the_raw_body():
    body = b'{"object":"whatsapp_business_account"}'
    good = "sha256=" + hmac.new(b"secret", body, hashlib.sha256).hexdigest()
    assert valid_signature("secret", body, good)
    assert valid_signature("secret", body, good.upper().replace("SHA256=", "sha256="))
    assert not valid_signature("secret", body + b" ", good)
    assert not valid_signature("other", body, good)
    assert not valid_signature("", body, good)
    assert not valid_signature("secret", body, good.removeprefix("sha256="))
    assert not valid_signature("secret", body, "sha256=ünïcode")


def test_handshake():
    assert verify_challenge("tok", "subscribe", "tok", "123") == "123"
    assert verify_challenge("tok", "subscribe", "nope", "123") is None
    assert verify_challenge("tok", "unsubscribe", "tok", "123") is None
    assert verify_challenge("", "subscribe", "", "123") is None
    assert verify_challenge("tok", "subscribe", "tok", "") is None


def test_markdown_to_whatsapp():
    assert markdown_to_whatsapp("# Title\n**b** *i* ~~s~~ `a*b*` [x](https://y)\n* item") == (
        "*Title*\n*b* _i_ ~s~ `a*b*` x (https://y)\n- item"
    )
    assert markdown_to_whatsapp("```\n**raw**\n```") == "```\n**raw**\n```"


def test_notification_parsing_keeps_ours_in_order():
    def msg(i, kind="text", **extra):
        base = {"from": "155", "id": f"wamid.{i}", "timestamp": "1700000000", "type": kind}
        base.update(extra)
        return base

    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "metadata": {"phone_number_id": "42"},
                            "contacts": [{"wa_id": "155", "profile": {"name": "Ann"}}],
                            "messages": [
                                msg(1, text={"body": "hi"}),
                                msg(
                                    2,
                                    "image",
                                    image={
                                        "id": "m1",
                                        "mime_type": "image/jpeg",
                                        "caption": "look",
                                    },
                                ),
                                msg(3, "reaction", reaction={"emoji": "👍"}),
                                msg(
                                    4,
                                    "interactive",
                                    interactive={"button_reply": {"id": "b", "title": "Yes"}},
                                ),
                                {"id": "wamid.5", "type": "text"},
                                "garbage",
                            ],
                            "statuses": [
                                {
                                    "status": "failed",
                                    "recipient_id": "155",
                                    "errors": [{"code": 131047, "title": "Re-engagement message"}],
                                },
                                {"status": "delivered", "recipient_id": "155"},
                            ],
                        },
                    },
                    {
                        "field": "messages",
                        "value": {
                            "metadata": {"phone_number_id": "7"},
                            "messages": [msg(9, text={"body": "not ours"})],
                        },
                    },
                ]
            }
        ],
    }
    incoming, failures = parse_notification(payload, "42", "whatsapp")
    assert [(i.event.message_id, i.event.text) for i in incoming] == [
        ("wamid.1", "hi"),
        ("wamid.2", "look"),
        ("wamid.4", "Yes"),
    ]
    assert incoming[0].event.source.user_name == "Ann"
    assert incoming[0].sent_at == 1700000000.0
    assert [(m.media_id, m.kind) for m in incoming[1].media] == [("m1", "image")]
    assert [(f.recipient, f.code) for f in failures] == [("155", 131047)]
    assert parse_notification({"object": "page"}, "42", "whatsapp") == ([], [])
    assert parse_notification({"object": "whatsapp_business_account", "entry": "x"}, "42", "w") == (
        [],
        [],
    )


def test_allowlist_entries_become_wa_ids_as_in_hermes_agent(tmp_path):
    from hermes_gateway.config import load_config
    from hermes_gateway.paths import HermesPaths

    env = {
        "HERMES_HOME": str(tmp_path),
        "WHATSAPP_CLOUD_ALLOWED_USERS": "+1 555-123-0001, 15551230002@s.whatsapp.net, *",
    }
    config = load_config(HermesPaths(tmp_path), env)
    assert config.platforms.whatsapp.allowed_users == ["15551230001", "15551230002", "*"]
    # Hermes reads WHATSAPP_CLOUD_ALLOW_FROM first.
    env["WHATSAPP_CLOUD_ALLOW_FROM"] = "+15550009999"
    config = load_config(HermesPaths(tmp_path), env)
    assert config.platforms.whatsapp.allowed_users == ["15550009999"]
