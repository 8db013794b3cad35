"""Twilio's request signature: ``X-Twilio-Signature``.

Twilio signs every webhook with HMAC-SHA1 keyed by the account's auth token, over the full
URL it posted to (as configured in its console, query string included) followed by each POST
parameter's name and value, sorted by name, with no separators; the header carries the
digest in base64. Twilio may sign the URL with or without the scheme's default port, so both
forms are tried. Comparison is constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from collections.abc import Iterable

__all__ = ["signature", "valid_signature"]


def signature(token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """The signature Twilio sends for ``params`` posted to ``url``."""
    data = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def valid_signature(token: str, url: str, params: list[tuple[str, str]], given: str) -> bool:
    """Whether ``given`` is Twilio's signature of this request (default port or not)."""
    if not token or not given:
        return False
    for candidate in _url_forms(url):
        if hmac.compare_digest(signature(token, candidate, params).encode(), given.encode()):
            return True
    return False


def _url_forms(url: str) -> list[str]:
    parsed = urllib.parse.urlsplit(url)
    default = {"https": 443, "http": 80}.get(parsed.scheme)
    forms = [url]
    if default is None or parsed.hostname is None:
        return forms
    try:
        port = parsed.port
    except ValueError:
        return forms
    host = parsed.hostname if ":" not in parsed.hostname else f"[{parsed.hostname}]"
    if port == default:
        forms.append(urllib.parse.urlunsplit(parsed._replace(netloc=host)))
    elif port is None:
        forms.append(urllib.parse.urlunsplit(parsed._replace(netloc=f"{host}:{default}")))
    return forms
