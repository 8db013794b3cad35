"""``POST /v1/responses``: OpenAI's Responses API over the agent, with stored chaining.

Each stored response keeps the chat messages it added (its input, then everything the agent
produced: tool calls, tool results, the answer) in ``api_responses``; a request naming
``previous_response_id`` gets the whole chain as its history, rebuilt by one recursive query.
So branching works (two responses may follow the same one) and nothing is lost when the
gateway restarts. ``instructions`` apply to their own request only, as in OpenAI's API.

The output lists the answer first (one ``message`` item, the agent's text) and then the tools
the agent ran, as ``function_call`` / ``function_call_output`` pairs, which is how Hermes Agent
reports them; the stream emits the same items in the same order, so indexes agree.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from hermes_gateway.models import parse_session_key
from hermes_gateway.platforms.api.openai_format import (
    AGENT_MODEL,
    ApiError,
    bad_request,
    dumps,
    new_id,
    optional_bool,
    optional_str,
    parse_json_object,
)
from hermes_gateway.platforms.api.responses_format import (
    EventWriter,
    ResponseShell,
    message_item,
    parse_input,
)
from hermes_gateway.platforms.api.stream import SSE_HEADERS, AnswerStream, run_turn
from hermes_gateway.store import StoredMessage

if TYPE_CHECKING:
    from hermes_gateway.agent.loop import TurnResult
    from hermes_gateway.platforms.api.endpoint import ApiEndpointHost

log = logging.getLogger(__name__)

MAX_CHAIN = 10_000
"""Longest chain followed; protects against a cycle written by hand into the database."""

_SQL_CHAIN = f"""
WITH RECURSIVE chain(id, previous_id, session_key, items, depth) AS (
    SELECT id, previous_id, session_key, items, 0 FROM api_responses WHERE id = ?
    UNION ALL
    SELECT r.id, r.previous_id, r.session_key, r.items, chain.depth + 1
    FROM api_responses r JOIN chain ON r.id = chain.previous_id
    WHERE chain.depth < {MAX_CHAIN}
)
SELECT session_key, items FROM chain ORDER BY depth DESC
"""
_SQL_INSERT = """
INSERT INTO api_responses (id, previous_id, session_key, items, created_at) VALUES (?, ?, ?, ?, ?)
"""


def _load_chain(
    conn: sqlite3.Connection, response_id: str
) -> tuple[str, list[dict[str, Any]]] | None:
    """``(session_key, messages)`` of a chain, oldest first; runs on the store's thread."""
    rows = conn.execute(_SQL_CHAIN, (response_id,)).fetchall()
    if not rows:
        return None
    messages: list[dict[str, Any]] = []
    for _, items in rows:
        messages.extend(json.loads(items))
    return rows[-1][0], messages


def _insert(conn: sqlite3.Connection, *row: Any) -> None:
    conn.execute(_SQL_INSERT, row)


class ResponsesApi:
    """The ``/v1/responses`` endpoint of one API server."""

    def __init__(self, host: ApiEndpointHost) -> None:
        self.host = host

    async def create(self, request: web.Request) -> web.StreamResponse:
        host = self.host
        body = parse_json_object(await host.read_body(request))
        model = optional_str(body, "model") or AGENT_MODEL
        model_name = host.model_override(model)
        if "input" not in body:
            raise bad_request(
                "Missing required parameter: 'input'.", "input", "missing_required_parameter"
            )
        system, messages = parse_input(body["input"])
        instructions = "\n\n".join(t for t in [optional_str(body, "instructions"), *system] if t)
        previous = optional_str(body, "previous_response_id")
        store = optional_bool(body, "store", True)
        stream = optional_bool(body, "stream", False)
        gateway = host.gateway()

        history: list[dict[str, Any]] | None = None
        if previous:
            chain = await gateway.store.read_sync(_load_chain, previous)
            if chain is None:
                raise ApiError(
                    404,
                    f"Previous response with id '{previous}' not found.",
                    param="previous_response_id",
                    code="previous_response_not_found",
                )
            session_key, history = chain
            source, continued = host.source_for(parse_session_key(session_key)[2]), True
        else:
            source, continued = host.session_source(request, optional_str(body, "user"))
        host.check_paused(source)
        with host.slot():
            answer = AnswerStream(streaming=stream)
            turn = gateway.run_request(
                source,
                messages,
                delivery=answer,
                history=history,
                instructions=instructions or None,
                new_session=not continued,
                keep=continued and history is None,
                model_name=model_name,
            )
            response = ResponseShell(new_id("resp_"), model, instructions or None, previous, store)
            headers = {"X-Hermes-Session-Id": source.chat_id}
            if stream:
                return await self._stream(
                    request, response, answer, turn, headers, source.session_key, messages
                )
            _, result = await turn
            await self._save(response, source.session_key, messages, result)
            return web.Response(
                body=dumps(response.finished(new_id("msg_"), answer.text, result)).encode(),
                headers=headers,
                content_type="application/json",
            )

    async def _save(
        self,
        response: ResponseShell,
        session_key: str,
        messages: list[StoredMessage],
        result: TurnResult,
    ) -> None:
        if not response.store:
            return
        items = [m.to_openai() for m in (*messages, *result.messages)]
        await self.host.gateway().store.write_sync(
            _insert, response.id, response.previous, session_key, dumps(items), time.time()
        )

    async def _stream(
        self,
        request: web.Request,
        response: ResponseShell,
        answer: AnswerStream,
        turn: Any,
        headers: dict[str, str],
        session_key: str,
        messages: list[StoredMessage],
    ) -> web.StreamResponse:
        task = asyncio.ensure_future(run_turn(answer, turn))
        http = web.StreamResponse(headers={**headers, **SSE_HEADERS})
        events = EventWriter()
        message_id = new_id("msg_")
        try:
            await http.prepare(request)
            await http.write(
                events("response.created", response=response.snapshot("in_progress"))
                + events("response.in_progress", response=response.snapshot("in_progress"))
                + events(
                    "response.output_item.added",
                    output_index=0,
                    item=message_item(message_id, "", "in_progress"),
                )
                + events(
                    "response.content_part.added",
                    item_id=message_id,
                    output_index=0,
                    content_index=0,
                    part={"type": "output_text", "text": "", "annotations": []},
                )
            )
            while batch := await answer.next_batch():
                out = []
                for item in batch:
                    if isinstance(item, str):
                        out.append(
                            events(
                                "response.output_text.delta",
                                item_id=message_id,
                                output_index=0,
                                content_index=0,
                                delta=item,
                                logprobs=[],
                            )
                        )
                    else:
                        out.append(events("hermes.tool.progress", **item.as_dict()))
                await http.write(b"".join(out))
            try:
                _, result = await task
            except Exception as exc:
                log.exception("API turn failed")
                failed = response.snapshot("failed")
                failed["error"] = {"code": "server_error", "message": f"The turn failed: {exc}"}
                await http.write(events("response.failed", response=failed))
            else:
                await self._save(response, session_key, messages, result)
                final = response.finished(message_id, answer.text, result)
                text = answer.text
                part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
                tail = [
                    events(
                        "response.output_text.done",
                        item_id=message_id,
                        output_index=0,
                        content_index=0,
                        text=text,
                        logprobs=[],
                    ),
                    events(
                        "response.content_part.done",
                        item_id=message_id,
                        output_index=0,
                        content_index=0,
                        part=part,
                    ),
                    events("response.output_item.done", output_index=0, item=final["output"][0]),
                ]
                for index, item in enumerate(final["output"][1:], start=1):
                    tail.append(events("response.output_item.added", output_index=index, item=item))
                    tail.append(events("response.output_item.done", output_index=index, item=item))
                kind = {"completed": "response.completed", "failed": "response.failed"}.get(
                    final["status"], "response.incomplete"
                )
                tail.append(events(kind, response=final))
                await http.write(b"".join(tail))
            await http.write_eof()
        except ConnectionError:
            log.debug("API client went away mid-stream")
        finally:
            if not task.done():
                task.cancel()
        return http
