"""``/v1/responses``: OpenAI's Responses API over the agent, with stored chaining.

Each stored response keeps the chat messages it added (its input, then everything the agent
produced: tool calls, tool results, the answer), the client's input items and the response
object, in one JSON document in ``api_responses.items`` (rows written before that hold the
bare list of messages). A request naming ``previous_response_id`` gets the whole chain as its
history, rebuilt by one recursive query, so branching works and nothing is lost when the
gateway restarts. ``conversation`` names a chain: each response in it follows the last one
(kept in the store's kv). ``instructions`` apply to their own request only, as in OpenAI's.
Stored responses are pruned by age and count (``responses_max_age_days``, ``responses_keep``).

The output holds what the client can act on: the answer (one ``message`` item) and the calls
of the client's own tools (``function_call`` items, which the client runs and answers with
``function_call_output`` in its next request). The agent's own tool runs stay inside the turn;
a client that wants to watch them asks for ``hermes.tool.progress`` events in the stream.
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
    TOOL_PROGRESS_EVENT,
    ApiError,
    bad_request,
    dumps,
    new_id,
    optional_bool,
    optional_str,
    parse_json_object,
)
from hermes_gateway.platforms.api.options import (
    PROGRESS_HEADER,
    Problems,
    responses_options,
    wants_progress,
)
from hermes_gateway.platforms.api.responses_format import (
    EventWriter,
    ResponseShell,
    input_items,
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

CONVERSATION_KEY = "api.conversation."
"""kv key prefix: a named conversation -> its latest response id."""

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
_SQL_PRUNE_AGE = "DELETE FROM api_responses WHERE created_at < ?"
_SQL_PRUNE_COUNT = """
DELETE FROM api_responses WHERE created_at <
    (SELECT created_at FROM api_responses ORDER BY created_at DESC LIMIT 1 OFFSET ?)
"""
_SQL_KV_SET = "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"


def _messages(items: str) -> list[dict[str, Any]]:
    doc = json.loads(items)
    return list(doc["messages"] if isinstance(doc, dict) else doc)


def _load_chain(
    conn: sqlite3.Connection, response_id: str
) -> tuple[str, list[dict[str, Any]]] | None:
    """``(session_key, messages)`` of a chain, oldest first; runs on the store's thread."""
    rows = conn.execute(_SQL_CHAIN, (response_id,)).fetchall()
    if not rows:
        return None
    messages: list[dict[str, Any]] = []
    for _, items in rows:
        messages.extend(_messages(items))
    return rows[-1][0], messages


def _load_one(conn: sqlite3.Connection, response_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT items FROM api_responses WHERE id = ?", (response_id,)).fetchone()
    if row is None:
        return None
    doc = json.loads(row[0])
    return doc if isinstance(doc, dict) else {"messages": doc}


def _delete(conn: sqlite3.Connection, response_id: str) -> bool:
    return conn.execute("DELETE FROM api_responses WHERE id = ?", (response_id,)).rowcount > 0


def _insert(
    conn: sqlite3.Connection,
    row: tuple[str, str | None, str, str, float],
    conversation: str | None,
    keep: int,
    max_age: float,
) -> None:
    conn.execute(_SQL_INSERT, row)
    if conversation:
        conn.execute(_SQL_KV_SET, (CONVERSATION_KEY + conversation, row[0]))
    if max_age > 0:
        conn.execute(_SQL_PRUNE_AGE, (row[4] - max_age,))
    conn.execute(_SQL_PRUNE_COUNT, (keep - 1,))


def _conversation(body: dict[str, Any]) -> str | None:
    value = body.get("conversation")
    if isinstance(value, dict):
        value = value.get("id")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 256:
        raise bad_request(
            "Invalid 'conversation': expected a name (1-256 characters) or {\"id\": name}.",
            "conversation",
        )
    return value.strip()


class ResponsesApi:
    """The ``/v1/responses`` endpoints of one API server."""

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
        problems = Problems()
        options = responses_options(body, problems)
        problems.raise_any()
        system, messages = parse_input(body["input"])
        instructions = "\n\n".join(t for t in [optional_str(body, "instructions"), *system] if t)
        previous = optional_str(body, "previous_response_id")
        conversation = _conversation(body)
        store = optional_bool(body, "store", True)
        stream = optional_bool(body, "stream", False)
        progress = wants_progress(body, request.headers.get(PROGRESS_HEADER))
        gateway = host.gateway()
        if conversation and previous:
            raise bad_request(
                "Send either 'previous_response_id' or 'conversation', not both.",
                "conversation",
            )
        if conversation:
            previous = await gateway.store.kv_get(CONVERSATION_KEY + conversation)

        history: list[dict[str, Any]] | None = None
        if previous:
            chain = await gateway.store.read_sync(_load_chain, previous)
            if chain is None and not conversation:
                raise ApiError(
                    404,
                    f"Previous response with id '{previous}' not found.",
                    param="previous_response_id",
                    code="previous_response_not_found",
                )
            if chain is None:
                previous = None  # the conversation's last response was pruned: start afresh
            else:
                session_key, history = chain
        if history is not None:
            source, continued = host.source_for(parse_session_key(session_key)[2]), True
        else:
            source, continued = host.session_source(request, optional_str(body, "user"))
        host.check_paused(source)
        host.check_vision(messages, model_name)
        await host.store_images(messages)
        echo = {
            k: body.get(k)
            for k in ("tools", "tool_choice", "text", "temperature", "top_p", "metadata")
        }
        echo["max_output_tokens"] = body.get("max_output_tokens")
        if conversation:
            echo["conversation"] = {"id": conversation}
        with host.slot():
            answer = AnswerStream(streaming=stream, progress=progress)
            turn = gateway.run_request(
                source,
                messages,
                delivery=answer,
                history=history,
                instructions=instructions or None,
                new_session=not continued,
                keep=continued and history is None,
                model_name=model_name,
                options=options,
            )
            response = ResponseShell(
                new_id("resp_"), model, instructions or None, previous, store, echo
            )
            saved = _Saved(source.session_key, messages, input_items(body["input"]), conversation)
            headers = {"X-Hermes-Session-Id": source.chat_id}
            if stream:
                return await self._stream(request, response, answer, turn, headers, saved)
            _, result = await turn
            final = response.finished(new_id("msg_"), answer.text, result)
            await self._save(response, saved, result, final)
            return web.Response(
                body=dumps(final).encode(), headers=headers, content_type="application/json"
            )

    async def get(self, request: web.Request) -> web.Response:
        doc = await self._stored(request)
        if "response" not in doc:
            raise self._not_found(request.match_info["id"])
        return web.json_response(doc["response"], dumps=dumps)

    async def delete(self, request: web.Request) -> web.Response:
        rid = request.match_info["id"]
        if not await self.host.gateway().store.write_sync(_delete, rid):
            raise self._not_found(rid)
        return web.json_response({"id": rid, "object": "response", "deleted": True}, dumps=dumps)

    async def input_items(self, request: web.Request) -> web.Response:
        """``GET /v1/responses/{id}/input_items`` with ``order``, ``limit`` and ``after``."""
        doc = await self._stored(request)
        items = list(doc.get("input") or [])
        order = request.query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise bad_request("Invalid 'order': expected 'asc' or 'desc'.", "order")
        if order == "desc":
            items.reverse()
        after = request.query.get("after")
        if after:
            ids = [i.get("id") for i in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        try:
            limit = int(request.query.get("limit", "20"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            raise bad_request("Invalid 'limit': expected an integer from 1 to 100.", "limit")
        page = items[:limit]
        return web.json_response(
            {
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(items) > limit,
            },
            dumps=dumps,
        )

    async def _stored(self, request: web.Request) -> dict[str, Any]:
        rid = request.match_info["id"]
        doc = await self.host.gateway().store.read_sync(_load_one, rid)
        if doc is None:
            raise self._not_found(rid)
        return doc

    @staticmethod
    def _not_found(rid: str) -> ApiError:
        return ApiError(404, f"Response with id '{rid}' not found.", param="id", code="not_found")

    async def _save(
        self,
        response: ResponseShell,
        saved: _Saved,
        result: TurnResult,
        final: dict[str, Any],
    ) -> None:
        if not response.store:
            return
        doc = {
            "messages": [m.to_openai() for m in (*saved.messages, *result.messages)],
            "input": saved.input,
            "response": final,
        }
        settings = self.host.settings
        row = (response.id, response.previous, saved.session_key, dumps(doc), time.time())
        await self.host.gateway().store.write_sync(
            _insert,
            row,
            saved.conversation,
            settings.responses_keep,
            settings.responses_max_age_days * 86400,
        )

    async def _stream(
        self,
        request: web.Request,
        response: ResponseShell,
        answer: AnswerStream,
        turn: Any,
        headers: dict[str, str],
        saved: _Saved,
    ) -> web.StreamResponse:
        task = asyncio.ensure_future(run_turn(answer, turn))
        http = web.StreamResponse(headers={**headers, **SSE_HEADERS})
        events = EventWriter()
        message_id = new_id("msg_")
        text = _TextItem(events, message_id)
        try:
            await http.prepare(request)
            await http.write(
                events("response.created", response=response.snapshot("in_progress"))
                + events("response.in_progress", response=response.snapshot("in_progress"))
            )
            while batch := await answer.next_batch():
                out = []
                for item in batch:
                    if isinstance(item, str):
                        out.append(text.delta(item))
                    else:
                        out.append(events(TOOL_PROGRESS_EVENT, **item.as_dict()))
                await http.write(b"".join(out))
            try:
                _, result = await task
            except Exception as exc:
                log.exception("API turn failed")
                failed = response.snapshot("failed")
                failed["error"] = {"code": "server_error", "message": f"The turn failed: {exc}"}
                await http.write(events("response.failed", response=failed))
            else:
                final = response.finished(message_id, answer.text, result)
                await self._save(response, saved, result, final)
                tail = []
                calls = final["output"]
                if calls and calls[0]["type"] == "message":
                    tail.append(text.done(answer.text, calls[0]))
                    calls = calls[1:]
                for index, item in enumerate(calls, start=len(final["output"]) - len(calls)):
                    tail.append(_function_call_events(events, index, item))
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


class _Saved:
    """What a response stores besides its object: its session, messages and input items."""

    __slots__ = ("conversation", "input", "messages", "session_key")

    def __init__(
        self,
        session_key: str,
        messages: list[StoredMessage],
        items: list[dict[str, Any]],
        conversation: str | None,
    ) -> None:
        self.session_key, self.messages = session_key, messages
        self.input, self.conversation = items, conversation


class _TextItem:
    """The answer's ``message`` item in a stream: opened by its first text, so a turn that
    ends on client tool calls without a word has no empty message before them."""

    def __init__(self, events: EventWriter, message_id: str) -> None:
        self.events, self.id, self.open = events, message_id, False

    def _start(self) -> bytes:
        self.open = True
        return self.events(
            "response.output_item.added",
            output_index=0,
            item=message_item(self.id, "", "in_progress"),
        ) + self.events(
            "response.content_part.added",
            item_id=self.id,
            output_index=0,
            content_index=0,
            part={"type": "output_text", "text": "", "annotations": []},
        )

    def delta(self, text: str) -> bytes:
        head = b"" if self.open else self._start()
        return head + self.events(
            "response.output_text.delta",
            item_id=self.id,
            output_index=0,
            content_index=0,
            delta=text,
            logprobs=[],
        )

    def done(self, text: str, item: dict[str, Any]) -> bytes:
        head = b"" if self.open else self._start()
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        ids = {"item_id": self.id, "output_index": 0, "content_index": 0}
        return (
            head
            + self.events("response.output_text.done", **ids, text=text, logprobs=[])
            + self.events("response.content_part.done", **ids, part=part)
            + self.events("response.output_item.done", output_index=0, item=item)
        )


def _function_call_events(events: EventWriter, index: int, item: dict[str, Any]) -> bytes:
    """A client tool call's added / arguments delta / arguments done / done events."""
    added = {**item, "status": "in_progress", "arguments": ""}
    ids = {"item_id": item["id"], "output_index": index}
    return (
        events("response.output_item.added", output_index=index, item=added)
        + events("response.function_call_arguments.delta", **ids, delta=item["arguments"])
        + events("response.function_call_arguments.done", **ids, arguments=item["arguments"])
        + events("response.output_item.done", output_index=index, item=item)
    )
