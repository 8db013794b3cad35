"""Matrix's pieces on their own: settings from a Hermes home, ids, errors, event content."""

from __future__ import annotations

import json

from hermes_gateway.access.pairing_gate import canonical_id
from hermes_gateway.config import MatrixConfig, matrix_chat_id, matrix_id
from hermes_gateway.delivery.errors import (
    EditFailed,
    PermanentDeliveryError,
    RetryAfter,
    TransientDeliveryError,
)
from hermes_gateway.platforms import registry
from hermes_gateway.platforms.matrix.client import MatrixError, map_error
from hermes_gateway.platforms.matrix.html import markdown_to_html, quiet
from hermes_gateway.platforms.matrix.inbound import MatrixInbound, _without_reply_fallback
from hermes_gateway.platforms.matrix.transport import (
    EVENT_BUDGET,
    edit_content,
    message_content,
    split_target,
    target_for,
)
from tests.conftest import make_config

HERMES_ENV = {
    "MATRIX_HOMESERVER": "https://matrix.example.org",
    "MATRIX_ACCESS_TOKEN": "syt_tok",
    "MATRIX_USER_ID": "@hermes:example.org",
    "MATRIX_ALLOWED_USERS": "@alice:example.org,@bob:example.org",
    "MATRIX_HOME_ROOM": "!home:example.org",
    "MATRIX_REQUIRE_MENTION": "false",
    "MATRIX_FREE_RESPONSE_ROOMS": "!a:example.org,!b:example.org",
    "MATRIX_ALLOWED_ROOMS": "!a:example.org",
    "MATRIX_AUTO_THREAD": "false",
    "MATRIX_MAX_MESSAGE_LENGTH": "4000",
}


def test_a_hermes_env_configures_and_enables_matrix(tmp_path):
    config = make_config(tmp_path, **HERMES_ENV)
    mx = config.platforms.matrix
    assert isinstance(config.platforms.chat("matrix"), MatrixConfig)
    assert (mx.homeserver, mx.token, mx.user_id) == (
        "https://matrix.example.org",
        "syt_tok",
        "@hermes:example.org",
    )
    assert mx.allowed_users == ["@alice:example.org", "@bob:example.org"]
    assert mx.require_mention is False and mx.auto_thread is False
    assert mx.free_response_rooms == ["!a:example.org", "!b:example.org"]
    assert mx.allowed_rooms == ["!a:example.org"] and mx.max_message_length == 4000
    assert registry.plugins()["matrix"].enabled(config)
    assert not registry.plugins()["matrix"].enabled(make_config(tmp_path))
    password_only = make_config(tmp_path, MATRIX_PASSWORD="pw", MATRIX_USER_ID="@h:x")
    assert registry.plugins()["matrix"].enabled(password_only)


def test_the_home_room_is_a_delivery_target(tmp_path):
    config = make_config(tmp_path, **HERMES_ENV)
    assert config.platforms.matrix.home == "!home%3Aexample.org"
    threaded = make_config(tmp_path, **HERMES_ENV, MATRIX_HOME_CHANNEL_THREAD_ID="")
    assert threaded.platforms.matrix.home == "!home%3Aexample.org"


def test_hermes_config_yaml_section_is_honoured(tmp_path):
    (tmp_path / "config.yaml").write_text(
        "matrix:\n  require_mention: false\n  free_response_rooms: '!x:y'\n"
        "platforms:\n  matrix:\n    edit_interval: 0.5\n"
    )
    mx = make_config(tmp_path).platforms.matrix
    assert mx.require_mention is False and mx.free_response_rooms == ["!x:y"]
    assert mx.edit_interval == 0.5


def test_room_and_event_ids_survive_keys_and_targets():
    for room in ("!abc:example.org", "!abc:example.org:8448", "!v12hashOnly", "!we%rd:x"):
        chat = matrix_chat_id(room)
        assert ":" not in chat and matrix_id(chat) == room
        target = target_for(chat, matrix_chat_id("$ev:old.server"))
        assert split_target(target) == (room, "$ev:old.server")
    assert canonical_id(matrix_chat_id("!abc:example.org"))
    assert canonical_id(matrix_chat_id("!v12hash_-x"))
    assert canonical_id("@alice:example.org") and canonical_id("@a.b=c/d:host:8448")
    for forged in ("@Alice :x", "!abc:example.org", "@alice", "@a:b c", "!a%3A b"):
        assert not canonical_id(forged), forged


def test_rate_limit_and_other_refusals_map_to_delivery_errors():
    limited = map_error(MatrixError("M_LIMIT_EXCEEDED", "Too Many Requests", 1500, 429), "send")
    assert isinstance(limited, RetryAfter) and limited.seconds == 1.5
    assert map_error(MatrixError("", "slow down", None, 429), "edit").seconds == 1.0  # type: ignore[attr-defined]
    assert isinstance(map_error(MatrixError("", "boom", None, 502), "send"), TransientDeliveryError)
    assert isinstance(map_error(MatrixError("M_FORBIDDEN", "no", None, 403), "edit"), EditFailed)
    assert isinstance(
        map_error(MatrixError("M_FORBIDDEN", "not in room", None, 403), "send"),
        PermanentDeliveryError,
    )
    assert MatrixError("M_UNKNOWN_TOKEN", "bad", None, 401).auth


def test_messages_carry_html_and_stay_inside_an_event():
    content = message_content("**hi** <script>x</script> @room")
    assert content["body"] == "**hi** <script>x</script> @\u200broom"
    assert "<strong>hi</strong>" in content["formatted_body"]
    assert "<script>" not in content["formatted_body"]
    huge = "&" * 20_000  # its HTML (&amp; x 20000) would not fit beside it
    assert "formatted_body" not in message_content(huge)
    edit = edit_content("$e", huge)
    assert len(json.dumps(edit).encode()) <= EVENT_BUDGET
    assert edit["m.new_content"]["body"] == huge
    assert edit["m.relates_to"] == {"rel_type": "m.replace", "event_id": "$e"}
    assert quiet("mail@room.org and @room") == "mail@room.org and @\u200broom"
    assert markdown_to_html("[x](javascript:alert(1))").count("href") == 0


def test_mentions_and_reply_fallbacks(tmp_path):
    config = make_config(tmp_path, **HERMES_ENV)
    inbound = MatrixInbound(config.platforms.matrix, None, None)  # type: ignore[arg-type]
    inbound.user_id = "@hermes:example.org"
    assert inbound.addressed({"body": "x", "m.mentions": {"user_ids": ["@hermes:example.org"]}})
    assert inbound.addressed({"body": "hey @hermes, hi"})
    assert inbound.addressed(
        {
            "body": "Hermes: hi",
            "formatted_body": '<a href="https://matrix.to/#/%40hermes%3Aexample.org">H</a>',
        }
    )
    assert not inbound.addressed({"body": "hermes is a god"})
    assert not inbound.addressed({"body": "mail @hermesbot please"})
    assert inbound.clean_text("@hermes: what now") == "what now"
    assert _without_reply_fallback("> <@a:b> old\n> more\n\nnew text", True) == "new text"
    assert _without_reply_fallback("> quoted by me", False) == "> quoted by me"
