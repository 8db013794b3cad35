"""A platform is a plugin: an entry point in ``hermes.platforms`` and no edit to the core."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from hermes_gateway.platforms import registry
from hermes_tui.assembly import build_gateway
from tests.helpers import Recorder
from tests.plugins.demo_platform import DemoAdapter


def test_built_in_platforms_are_found_as_plugins():
    found = registry.plugins()
    assert {"telegram", "discord", "api_server"} <= set(found)


async def test_a_third_party_platform_is_found_started_and_answered(
    config, fake_openai, monkeypatch: pytest.MonkeyPatch
):
    demo = EntryPoint("demo", "tests.plugins.demo_platform:PLUGIN", registry.ENTRY_POINT_GROUP)

    def entry_points(*, group: str) -> list[EntryPoint]:
        return [demo] if group == registry.ENTRY_POINT_GROUP else []

    monkeypatch.setattr(registry, "entry_points", entry_points)
    config.allow_all_users = True
    gateway = build_gateway(config)
    recorder = Recorder(gateway.bus)
    runner = await gateway.start(local=False)
    try:
        adapter = runner.adapters["demo"]
        assert isinstance(adapter, DemoAdapter)
        await recorder.wait_for(
            lambda: any(getattr(e, "platform", "") == "demo" for e in recorder.events)
        )
        await adapter.say("zoe", "hello plugin")
        await runner.wait_idle()
        assert adapter.sent == [("zoe", "echo: hello plugin")]
    finally:
        await gateway.stop()
