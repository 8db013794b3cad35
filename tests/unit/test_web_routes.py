"""The gateway's table of platform webhook routes (platforms/web_routes.py)."""

from __future__ import annotations

import pytest

from hermes_gateway.platforms.web_routes import WebRoutes, on_api_server


async def _handler(request):  # pragma: no cover - never called here
    raise AssertionError


def test_routes_are_owned_found_and_removed():
    routes = WebRoutes()
    routes.add("sms", "post", "/webhooks/twilio/", _handler)
    routes.add("whatsapp", "GET", "whatsapp/webhook", _handler)
    routes.add("whatsapp", "POST", "/whatsapp/webhook", _handler)
    found = routes.find("POST", "/webhooks/twilio")
    assert found is not None and found.owner == "sms"
    assert routes.find("GET", "/webhooks/twilio") is None
    head = routes.find("HEAD", "/whatsapp/webhook")
    assert head is not None and head.method == "GET"
    with pytest.raises(ValueError, match="already served for sms"):
        routes.add("whatsapp", "POST", "/webhooks/twilio", _handler)
    routes.add("sms", "POST", "/webhooks/twilio", _handler)  # the same owner may re-add
    assert {r.method for r in routes.of("whatsapp")} == {"GET", "POST"}
    routes.remove("whatsapp")
    assert routes.of("whatsapp") == [] and routes.find("POST", "/whatsapp/webhook") is None
    assert routes.find("POST", "/webhooks/twilio") is not None


def test_which_server_carries_a_webhook():
    assert on_api_server(True, 0)
    assert not on_api_server(True, 8080)  # the platform's own port was set
    assert not on_api_server(False, 0)
