"""Email settings: Hermes Agent's EMAIL_* variables and platforms.email keys, read as ours."""

from __future__ import annotations

from pathlib import Path

from hermes_gateway.config import inspect_config, load_config
from hermes_gateway.paths import HermesPaths
from hermes_gateway.platforms.registry import plugins


def config_of(home: Path, env: dict[str, str], yaml: str = ""):
    if yaml:
        (home / "config.yaml").write_text(yaml)
    return load_config(HermesPaths(home), {"HERMES_HOME": str(home), **env})


def test_hermes_agent_variables_set_up_email(tmp_path):
    config = config_of(
        tmp_path,
        {
            "EMAIL_ADDRESS": "bot@example.org",
            "EMAIL_PASSWORD": "app-password",
            "EMAIL_IMAP_HOST": "imap.example.org",
            "EMAIL_IMAP_PORT": "1993",
            "EMAIL_SMTP_HOST": "smtp.example.org",
            "EMAIL_SMTP_PORT": "465",
            "EMAIL_POLL_INTERVAL": "60",
            "EMAIL_ALLOWED_USERS": "Alice@Example.org, bob@example.org",
            "EMAIL_HOME_ADDRESS": "alice@example.org",
            "EMAIL_TRUST_FROM_HEADER": "true",
            "EMAIL_AUTHSERV_ID": "mx.example.org",
        },
    )
    email = config.platforms.email
    assert (email.address, email.password) == ("bot@example.org", "app-password")
    assert (email.imap_host, email.imap_port) == ("imap.example.org", 1993)
    assert (email.smtp_host, email.smtp_port) == ("smtp.example.org", 465)
    assert email.poll_interval == 60.0
    assert email.allowed_users == ["alice@example.org", "bob@example.org"]
    assert email.home == "alice@example.org"
    assert email.trust_from_header and email.authserv_id == "mx.example.org"
    assert email.unauthorized_dm == "ignore"  # no pairing codes by mail
    assert plugins()["email"].enabled(config)


def test_defaults_are_hermes_agents(tmp_path):
    email = config_of(tmp_path, {}).platforms.email
    assert (email.imap_port, email.smtp_port, email.poll_interval) == (993, 587, 15.0)
    assert email.tls and not email.trust_from_header
    assert not plugins()["email"].enabled(config_of(tmp_path, {}))


def test_a_hermes_config_yaml_email_section_is_read(tmp_path):
    config = config_of(
        tmp_path,
        {"EMAIL_PASSWORD": "x"},
        "platforms:\n  email:\n    extra:\n      address: bot@example.org\n"
        "      imap_host: imap.example.org\n      smtp_host: smtp.example.org\n"
        "      skip_attachments: true\n      require_authenticated_sender: false\n",
    )
    email = config.platforms.email
    assert email.address == "bot@example.org" and email.skip_attachments
    assert email.trust_from_header  # Hermes' require_authenticated_sender: false


def test_bad_numbers_name_the_variable(tmp_path):
    _, errors = inspect_config(
        HermesPaths(tmp_path), {"HERMES_HOME": str(tmp_path), "EMAIL_IMAP_PORT": "0"}
    )
    assert any("EMAIL_IMAP_PORT" in str(e) for e in errors)
