"""Mattermost's pieces on their own: settings from a Hermes home, error mapping, event parsing."""

from __future__ import annotations

import json

import pytest

from hermes_gateway.access.pairing_gate import canonical_id
from hermes_gateway.config import ConfigError, MattermostConfig
from hermes_gateway.delivery.errors import EditFailed, MessageGone, RetryAfter
from hermes_gateway.platforms import registry
from hermes_gateway.platforms.mattermost.api import ApiError, MattermostApi, map_error
from hermes_gateway.platforms.mattermost.inbound import event_context
from hermes_gateway.platforms.mattermost.transport import split_target, target_for
from tests.conftest import make_config

HERMES_ENV = {
    "MATTERMOST_URL": "https://chat.example.com/",
    "MATTERMOST_TOKEN": "tok",
    "MATTERMOST_ALLOWED_USERS": "abc123def456ghi789jkl012mn,zz",
    "MATTERMOST_HOME_CHANNEL": "homechan",
    "MATTERMOST_REQUIRE_MENTION": "false",
    "MATTERMOST_FREE_RESPONSE_CHANNELS": "c1,c2",
    "MATTERMOST_ALLOWED_CHANNELS": "c1",
    "MATTERMOST_REPLY_MODE": "thread",
}


def test_a_hermes_env_configures_and_enables_mattermost(tmp_path):
    config = make_config(tmp_path, **HERMES_ENV)
    mm = config.platforms.mattermost
    assert isinstance(config.platforms.chat("mattermost"), MattermostConfig)
    assert (mm.url, mm.token, mm.home_channel) == ("https://chat.example.com/", "tok", "homechan")
    assert mm.allowed_users == ["abc123def456ghi789jkl012mn", "zz"]
    assert mm.require_mention is False and mm.reply_mode == "thread"
    assert (mm.free_response_channels, mm.allowed_channels) == (["c1", "c2"], ["c1"])
    assert registry.plugins()["mattermost"].enabled(config)
    assert not registry.plugins()["mattermost"].enabled(make_config(tmp_path))
    api = MattermostApi(mm.url, mm.token)
    assert api.websocket_url == "wss://chat.example.com/api/v4/websocket"


def test_hermes_config_yaml_section_is_honoured(tmp_path):
    (tmp_path / "config.yaml").write_text(
        "mattermost:\n  require_mention: false\n  free_response_channels: 'x,y'\n"
    )
    mm = make_config(tmp_path).platforms.mattermost
    assert mm.require_mention is False and mm.free_response_channels == ["x", "y"]


def test_a_bad_reply_mode_is_named(tmp_path):
    with pytest.raises(ConfigError) as err:
        make_config(tmp_path, MATTERMOST_REPLY_MODE="sideways")
    assert "reply_mode" in str(err.value)


def test_rate_limit_and_edit_errors_map_to_delivery_errors():
    headers = {"X-Ratelimit-Reset": "2", "X-Ratelimit-Remaining": "0"}
    limited = MattermostApi._error(429, headers, b"limit exceeded\n")
    assert isinstance(mapped := map_error(limited, "edit"), RetryAfter) and mapped.seconds == 2
    retry_after = MattermostApi._error(429, {"Retry-After": "0.5", "X-Ratelimit-Reset": "9"}, b"")
    assert map_error(retry_after, "send").seconds == 0.5  # type: ignore[attr-defined]
    body = json.dumps({"id": "app.post.get.app_error", "message": "gone", "status_code": 404})
    gone = MattermostApi._error(404, {}, body.encode())
    assert gone.error_id == "app.post.get.app_error" and gone.message == "gone"
    assert isinstance(map_error(gone, "edit"), MessageGone)
    assert isinstance(map_error(ApiError(403, "x", "no"), "edit"), EditFailed)


def test_posted_event_context_and_targets():
    ctx = event_context(
        {"channel_type": "D", "sender_name": "@alice", "mentions": '["bot1"]', "post": "{}"}
    )
    assert (ctx.channel_type, ctx.sender_name, ctx.mentions) == ("D", "alice", ("bot1",))
    assert event_context({"mentions": "not json"}).mentions == ()
    assert split_target(target_for("chan", "root")) == ("chan", "root")
    assert split_target(target_for("chan", None)) == ("chan", "")


def test_mattermost_ids_are_canonical_but_digit_strings_still_are_not():
    assert canonical_id("3x8k1c9f7jgwzpd5mq1ey8oyhr")  # a real id may start with a digit
    assert canonical_id("abc123def456ghi789jkl012mn")
    assert not canonical_id("00000000000000000000000007")
    assert not canonical_id("3x8k1c9f7jgwzpd5mq1ey8oyh")  # 25 characters


def test_channel_wide_mentions_are_defused_and_counted():
    from hermes_gateway.platforms.mattermost.api import MattermostApi as Api
    from hermes_gateway.platforms.mattermost.transport import MattermostTransport, quiet

    text = "ping @channel, @ALL and @here; not me@here.com, @channels or @@all"
    assert quiet(text) == (
        "ping @\u200bchannel, @\u200bALL and @\u200bhere; not me@here.com, @channels or @@all"
    )
    assert MattermostTransport(Api("http://x", "t")).measure("@here") == 6
