"""The Slack package's pure parts: mrkdwn both ways, slash-command text, the Tier budget,
and what Web API refusals mean for delivery."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from hermes_gateway.commands.builtin import build_registry
from hermes_gateway.delivery import split_message
from hermes_gateway.delivery.errors import (
    EditFailed,
    FormattingRejected,
    MessageGone,
    PermanentDeliveryError,
    RetryAfter,
)
from hermes_gateway.platforms.slack.commands import command_text, manifest_commands
from hermes_gateway.platforms.slack.mrkdwn import from_slack, measure, to_mrkdwn
from hermes_gateway.platforms.slack.transport import MethodBudget, map_api_error


def test_markdown_becomes_mrkdwn_and_code_stays_verbatim():
    md = (
        "# Title\n**bold** and *it* and ~~gone~~, [docs](https://x.io/a?b=1&c=2)\n"
        "- item <tag> & co\n```python\nif a < b and c**2:\n    pass\n```\nuse `x**y` here"
    )
    out = to_mrkdwn(md)
    assert out.startswith("*Title*\n*bold* and _it_ and ~gone~, <https://x.io/a?b=1&amp;c=2|docs>")
    assert "• item &lt;tag&gt; &amp; co" in out
    assert "```\nif a &lt; b and c**2:\n    pass\n```" in out
    assert "`x**y`" in out


@pytest.mark.parametrize(
    "text",
    ["a & b < c > d " * 50, "**x** [l](https://e.com/&) # h\n" * 40, "```\n<<&&>>\n```\n" * 30],
)
def test_measure_bounds_the_converted_length_of_every_chunk(text):
    for chunk in split_message(text, 200, measure=measure):
        assert len(to_mrkdwn(chunk)) <= measure(chunk) <= 200


def test_user_text_from_slack_markup():
    raw = "hi <@U1|ann> see <https://a.b/c|the doc> in <#C9|general> &lt;3 &amp; <!here>"
    assert from_slack(raw) == "hi @ann see the doc (https://a.b/c) in #general <3 & @here"
    assert from_slack("<@U2>", {"U2": "bob"}) == "@bob"


def test_slash_commands_map_onto_the_registry():
    registry = build_registry()
    assert command_text("/hermes", "", registry) == "/help"
    assert command_text("/hermes", "reset  now", registry) == "/reset now"
    assert command_text("/status", "", registry) == "/status"
    assert command_text("/nonsense", "x", registry) is None
    assert command_text("/hermes", "nonsense", registry) is None
    entries = manifest_commands(registry.specs("slack"))
    names = [e["command"] for e in entries]
    assert names[0] == "/hermes" and "/new" in names and len(names) == len(set(names))
    assert all(len(e["description"]) <= 100 for e in entries)


def test_update_budget_refuses_beyond_the_tier_and_refills():
    now = [0.0]
    budget = MethodBudget(per_minute=60, burst=3, clock=lambda: now[0])
    assert [budget.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert budget.take() == pytest.approx(1.0)
    now[0] += 1.0
    assert budget.take() == 0.0


def _refusal(error: str, status: int = 200, headers: dict[str, str] | None = None):
    response = AsyncSlackResponse(
        client=AsyncWebClient(),
        http_verb="POST",
        api_url="http://127.0.0.1/api/chat.update",
        req_args={},
        data={"ok": False, "error": error},
        headers=headers or {},
        status_code=status,
    )
    return SlackApiError(error, response)


def test_web_api_refusals_mean_what_delivery_needs():
    limited = map_api_error(_refusal("ratelimited", 429, {"Retry-After": "7"}), "edit")
    assert isinstance(limited, RetryAfter) and limited.seconds == 7
    assert isinstance(map_api_error(_refusal("message_not_found"), "edit"), MessageGone)
    assert isinstance(map_api_error(_refusal("cant_update_message"), "edit"), EditFailed)
    assert isinstance(map_api_error(_refusal("msg_too_long"), "send"), FormattingRejected)
    assert isinstance(map_api_error(_refusal("channel_not_found"), "send"), PermanentDeliveryError)
