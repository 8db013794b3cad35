"""Per-user group keys: built, parsed back, kept across the inbox, and chosen by config."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from hermes_gateway.models import (
    MessageEvent,
    SessionSource,
    build_session_key,
    key_user,
    parse_session_key,
)
from hermes_gateway.operator import source_of
from hermes_gateway.session_scope import scoped
from hermes_gateway.store import SessionStore
from hermes_gateway.store.inbox import event_from_json, event_to_json
from tests.conftest import make_config

GROUP = SessionSource("telegram", "-100", "group", None, "7", "Ann", "Team")
TOPIC = SessionSource("telegram", "-100", "group", "3", "7", "Ann", "Team")


def test_a_per_user_key_ends_with_the_user_and_parses_back_to_its_chat() -> None:
    key = build_session_key("mattermost", "thread", "town", "u8abc", user_id="u8abc")
    assert key == "mattermost:thread:town:u8abc:@u8abc"
    assert parse_session_key(key) == ("mattermost", "thread", "town", "u8abc")
    assert key_user(key) == "u8abc"
    assert key_user("mattermost:thread:town:u8abc") is None  # a thread id is not a user


def test_config_decides_per_user_for_groups_and_threads(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    assert scoped(config, GROUP).session_key == "telegram:group:-100:@7"
    assert scoped(config, TOPIC).session_key == "telegram:group:-100:3"  # threads: shared
    dm = SessionSource("telegram", "7", "dm", None, "7", "Ann")
    assert scoped(config, dm) is dm
    nobody = replace(GROUP, user_id=None)  # no participant id: the group's shared session
    assert scoped(config, nobody).session_key == "telegram:group:-100"
    config.thread_sessions_per_user = True
    assert scoped(config, TOPIC).session_key == "telegram:group:-100:3:@7"
    config.group_sessions_per_user = False
    assert scoped(config, GROUP).session_key == "telegram:group:-100"
    # A source already marked keeps its session whatever the config says now.
    assert scoped(config, replace(GROUP, per_user=True)).session_key.endswith(":@7")


def test_the_mark_survives_the_inbox_and_the_store(tmp_path: Path) -> None:
    mine = scoped(make_config(tmp_path), GROUP)
    again = event_from_json(event_to_json(MessageEvent(text="hi", source=mine)))
    assert again.source.session_key == mine.session_key
    assert mine.display_name == "Team · Ann"


async def test_the_operator_rebuilds_a_per_user_source_from_its_record(tmp_path: Path) -> None:
    mine = scoped(make_config(tmp_path), GROUP)
    store = await SessionStore.open(tmp_path / "db.sqlite")
    try:
        record = await store.create_session(
            mine.session_key,
            platform="telegram",
            chat_type="group",
            chat_id="-100",
            user_id="7",
            display_name=mine.display_name,
        )
        rebuilt = source_of(record)
        assert rebuilt.session_key == mine.session_key
        assert rebuilt.display_name == "Team · Ann"
    finally:
        await store.close()
