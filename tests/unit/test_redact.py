"""Secrets never reach a chat or a log: URLs, known secrets, the logging filter."""

from __future__ import annotations

import logging
from pathlib import Path

from hermes_gateway.config import Config
from hermes_gateway.logging_setup import setup_logging
from hermes_gateway.redact import redact, redact_url, register_config_secrets


def test_url_loses_userinfo_and_secret_query_values() -> None:
    url = "https://user:pa55word@models.example:8443/v1?api_key=abc123&region=eu&token=zz"
    clean = redact_url(url)
    assert clean == "https://models.example:8443/v1?api_key=***&region=eu&token=***"
    assert redact_url("http://127.0.0.1:11434/v1") == "http://127.0.0.1:11434/v1"


def test_text_with_urls_bearer_and_configured_secrets() -> None:
    config = Config()
    config.model.api_key = "sk-live-0123456789"
    config.platforms.telegram.token = "123456:AAbbCCddEEff"
    config.env = {"SOME_SERVICE_TOKEN": "svc-token-value", "HOME": "/home/me"}
    register_config_secrets(config)
    text = (
        "POST https://api.telegram.org/bot123456:AAbbCCddEEff/sendMessage failed; "
        "key sk-live-0123456789, Authorization: Bearer abcdefghijkl, svc-token-value, "
        "see http://u:p@host/x?sig=1 in /home/me"
    )
    clean = redact(text)
    for secret in ("AAbbCCddEEff", "sk-live-0123456789", "abcdefghijkl", "svc-token-value", "u:p@"):
        assert secret not in clean
    assert "/home/me" in clean and "http://host/x?sig=***" in clean


def test_log_files_get_no_credentials(tmp_path: Path) -> None:
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    try:
        setup_logging(tmp_path, stderr=False)
        log = logging.getLogger("hermes_gateway.test")
        url = "https://bob:s3cret-pass@host/v1?api_key=k-987654321"
        log.warning("model at %s refused", url)
        try:
            raise ConnectionError(f"cannot connect to {url}")
        except ConnectionError:
            log.exception("turn failed")
        for handler in root.handlers:
            handler.flush()
        written = (tmp_path / "gateway.log").read_text(encoding="utf-8")
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
    assert "host/v1?api_key=***" in written and "cannot connect" in written
    assert "s3cret-pass" not in written and "k-987654321" not in written
