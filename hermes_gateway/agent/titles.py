"""Short session titles, asked of the model after a session's first exchange.

A title makes a chat findable in the Sessions list and in ``/resume`` without the user naming
it (Hermes Agent titles sessions the same way). The request is small, has its own timeout, and
is marked with ``X-Hermes-Purpose: title`` so logs and test servers can tell it from a turn;
a failure leaves the session untitled, never the conversation harmed.
"""

from __future__ import annotations

import logging
import re

from openai import AsyncOpenAI

from hermes_gateway.config import ModelConfig
from hermes_gateway.text import one_line

log = logging.getLogger(__name__)

__all__ = ["TITLE_HEADER", "clean_title", "suggest_title"]

TITLE_HEADER = {"X-Hermes-Purpose": "title"}
#: Seconds the title request may take; a slow model just leaves the session untitled.
TITLE_TIMEOUT_S = 20.0
TITLE_CHARS = 60

_INSTRUCTION = (
    "Write a title of 3 to 7 words for the conversation below. Reply with the title only: "
    "no quotes, no trailing period."
)


def clean_title(raw: str) -> str:
    """One line, no quotes or label, no trailing punctuation, at most ``TITLE_CHARS``."""
    text = one_line(raw.strip().splitlines()[0] if raw.strip() else "", TITLE_CHARS + 20)
    text = re.sub(r"^(title|titel)\s*:\s*", "", text, flags=re.IGNORECASE)
    text = text.strip().strip("\"'“”‘’`*#").strip().rstrip(".!:;,").strip()
    if len(text) > TITLE_CHARS:
        text = text[:TITLE_CHARS].rsplit(" ", 1)[0].rstrip(" ,;:-") or text[:TITLE_CHARS]
    return text


async def suggest_title(
    client: AsyncOpenAI, model: ModelConfig, question: str, answer: str
) -> str | None:
    """A title for an exchange, or None when the model gave nothing usable or failed."""
    exchange = f"User: {question[:1500]}\n\nAssistant: {answer[:1500]}"
    try:
        response = await client.chat.completions.create(
            model=model.name,
            messages=[
                {"role": "system", "content": _INSTRUCTION},
                {"role": "user", "content": exchange},
            ],
            max_tokens=24,
            temperature=0.3,
            stream=False,
            timeout=TITLE_TIMEOUT_S,
            extra_headers=TITLE_HEADER,
        )
    except Exception as exc:
        log.info("no session title: %s", exc)
        return None
    choice = response.choices[0] if response.choices else None
    content = choice.message.content if choice is not None else None
    title = clean_title(content or "")
    return title or None
