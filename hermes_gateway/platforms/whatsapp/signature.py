"""Meta's webhook checks: the subscription handshake and ``X-Hub-Signature-256``.

* Subscribing, Meta calls ``GET <webhook>?hub.mode=subscribe&hub.verify_token=<token>&
  hub.challenge=<n>``; the endpoint proves it is ours by echoing the challenge when the token
  is the one set in the app dashboard (WHATSAPP_CLOUD_VERIFY_TOKEN).
* Every notification is a POST whose ``X-Hub-Signature-256: sha256=<hex>`` is the HMAC-SHA256
  of the raw body keyed by the app secret (WHATSAPP_CLOUD_APP_SECRET). It is checked on the
  bytes as received, before any parsing, in constant time.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["body_signature", "valid_signature", "verify_challenge"]


def body_signature(secret: str, body: bytes) -> str:
    """The header value Meta sends for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def valid_signature(secret: str, body: bytes, header: str) -> bool:
    if not secret or not header.startswith("sha256="):
        return False
    expected = body_signature(secret, body)
    return hmac.compare_digest(expected.encode(), header.strip().lower().encode())


def verify_challenge(expected_token: str, mode: str, token: str, challenge: str) -> str | None:
    """The challenge to echo, or None when the handshake is not ours."""
    if not expected_token or mode != "subscribe" or not challenge:
        return None
    if not hmac.compare_digest(token.encode(), expected_token.encode()):
        return None
    return challenge
