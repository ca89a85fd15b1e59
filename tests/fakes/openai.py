"""Fake OpenAI-compatible Chat Completions server (``POST /v1/chat/completions``).

Why: tests run the real ``openai.AsyncOpenAI`` client and Pipecat's
``OpenAILLMService`` (``base_url=fake.base_url + "/v1"``) and decide each answer
with a POLICY, so conversations are deterministic and every request the app
sends (messages, tools offered, tool results returned) can be asserted on.

The policy is any callable, sync or async, taking a :class:`ChatRequest` and
returning a :class:`Reply` (text), :class:`ToolCalls` (one or more function
calls, optionally with text), a :class:`Fail` (an HTTP error in OpenAI's error
shape) or a plain ``str``. :class:`ScriptedPolicy` plays a list of such steps in
order. Faults mid-answer wrap a reply: :class:`Stall` stops streaming for a while
(before the first token, or part-way through), :class:`Drop` closes the connection
part-way through without finishing the stream. "Fails once, then answers" is a
script of ``[Fail(500), Reply(...)]``.

Streaming (``"stream": true``) follows OpenAI's SSE format: ``data: {chunk}``
lines of ``chat.completion.chunk`` objects. The first chunk carries
``delta.role = "assistant"``; text comes as ``delta.content`` pieces; each tool
call starts with a chunk holding ``index``, ``id``, ``type: "function"`` and
``function.name`` with empty ``arguments``, followed by chunks with only
``index`` and a piece of ``function.arguments``; the last choice chunk has an
empty delta and ``finish_reason`` (``stop`` or ``tool_calls``). With
``stream_options.include_usage`` every chunk has ``"usage": null`` and a final
chunk with ``"choices": []`` carries the usage. The stream ends with
``data: [DONE]``. Pipecat's service only streams, so a request without
``"stream": true`` is refused with 400 rather than answered in a shape nothing
tests. The one exception is a structured-output request (``response_format`` of
type ``json_schema``: the after-call summary, bot/summaries.py): it is answered
apart from the policy, not streamed, with :attr:`FakeOpenAI.summary_answer` as the
message's JSON content; :attr:`FakeOpenAI.fail_summaries` makes that many of them
fail with 500 first, and they are kept in :attr:`FakeOpenAI.summary_requests`
(not in ``requests``, which stay the conversation's).

With ``api_key`` set, a request without ``Authorization: Bearer <key>`` gets 401.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from aiohttp import web

from ._server import LoopbackServer

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------
# Policy results
# ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """Answer with text (streamed in ``chunk_chars`` pieces)."""

    text: str


@dataclass(frozen=True)
class Call:
    """One function call: ``name`` with JSON-serialisable ``arguments``."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str | None = None  # default: "call_" + random hex


@dataclass(frozen=True)
class ToolCalls:
    """Answer with function calls (``finish_reason: "tool_calls"``), optionally after text."""

    calls: list[Call]
    text: str | None = None


@dataclass(frozen=True)
class Fail:
    """Answer with an HTTP error in OpenAI's ``{"error": {...}}`` shape."""

    status: int = 500
    message: str = "The server had an error while processing your request."
    type: str = "server_error"
    code: str | None = None


@dataclass(frozen=True)
class Stall:
    """Answer ``result``, but stop for ``seconds`` once ``after_chars`` characters of its
    text and arguments went out (0: after the headers, before the first chunk). The stall
    ends early when the client goes away."""

    result: Reply | ToolCalls
    seconds: float
    after_chars: int = 0


@dataclass(frozen=True)
class Drop:
    """Start answering ``result``, then close the connection without finishing the stream
    once ``after_chars`` characters of its text and arguments went out."""

    result: Reply | ToolCalls
    after_chars: int = 0


Result: TypeAlias = Reply | ToolCalls | Fail | Stall | Drop | str


@dataclass
class ChatRequest:
    """What one ``/v1/chat/completions`` request carried, plus how it went."""

    body: dict[str, Any]
    headers: dict[str, str]
    received_at: float
    status: int | None = None
    completed: bool = False  # the whole response was written
    disconnected: bool = False  # the client went away mid-stream (e.g. interruption)

    @property
    def authorization(self) -> str | None:
        return self.headers.get("Authorization")

    @property
    def model(self) -> str | None:
        return self.body.get("model")

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    @property
    def tools(self) -> list[dict[str, Any]]:
        return list(self.body.get("tools") or [])

    @property
    def tool_names(self) -> list[str]:
        return [t.get("function", {}).get("name", "") for t in self.tools]

    def last_user_text(self) -> str:
        """Text of the last ``user`` message ("" if none)."""
        for msg in reversed(self.messages):
            if msg.get("role") == "user":
                return _content_text(msg.get("content"))
        return ""

    def tool_results(self) -> dict[str, Any]:
        """``tool_call_id`` -> parsed content (JSON if it parses) of every ``tool`` message."""
        out: dict[str, Any] = {}
        for msg in self.messages:
            if msg.get("role") == "tool":
                text = _content_text(msg.get("content"))
                try:
                    out[str(msg.get("tool_call_id"))] = json.loads(text)
                except json.JSONDecodeError:
                    out[str(msg.get("tool_call_id"))] = text
        return out


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


Policy: TypeAlias = Callable[[ChatRequest], Result | Awaitable[Result]]

# A summary in the schema of crm/summaries.py's CallSummary.
DEFAULT_SUMMARY: dict[str, Any] = {
    "reason": "The customer called about their car.", "vehicle": None, "actions": [],
    "open_questions": [], "callback_needed": False, "callback_reason": None,
}


class ScriptedPolicy:
    """Steps consumed in order, one per request; a step may itself be a policy.

    When the script runs out the request fails with HTTP 500 and the request is
    noted in :attr:`overruns`, so a test sees the unexpected extra turn.
    """

    def __init__(self, steps: Iterable[Result | Policy] = ()) -> None:
        self.steps: list[Result | Policy] = list(steps)
        self.used = 0
        self.overruns: list[ChatRequest] = []

    def add(self, *steps: Result | Policy) -> None:
        self.steps.extend(steps)

    async def __call__(self, request: ChatRequest) -> Result:
        if self.used >= len(self.steps):
            self.overruns.append(request)
            return Fail(500, f"ScriptedPolicy exhausted after {self.used} steps")
        step = self.steps[self.used]
        self.used += 1
        if callable(step):
            out = step(request)
            return await out if inspect.isawaitable(out) else out
        return step


# ---------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------


class FakeOpenAI(LoopbackServer):
    """OpenAI-compatible ``/v1/chat/completions`` on loopback; see the module docstring."""

    def __init__(
        self,
        policy: Policy | Iterable[Result | Policy] | None = None,
        *,
        api_key: str | None = None,
        chunk_delay: float = 0.0,
        chunk_chars: int = 8,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(host=host)
        if policy is None:
            policy = ScriptedPolicy()
        elif not callable(policy):
            policy = ScriptedPolicy(policy)
        self.policy: Policy = policy
        self.api_key = api_key
        self.chunk_delay = chunk_delay
        self.chunk_chars = max(1, chunk_chars)
        self.requests: list[ChatRequest] = []
        self.rejected: list[dict[str, str]] = []
        self.summary_answer: dict[str, Any] | Callable[[ChatRequest], dict[str, Any]] = DEFAULT_SUMMARY
        self.fail_summaries = 0
        self.summary_requests: list[ChatRequest] = []

    @property
    def api_base(self) -> str:
        """``base_url + "/v1"`` -- what ``AsyncOpenAI(base_url=...)`` wants."""
        return f"{self.base_url}/v1"

    async def wait_for_requests(
        self,
        count: int = 1,
        timeout: float = 10.0,  # noqa: ASYNC109 - a bounded wait is the point
    ) -> list[ChatRequest]:
        await self.wait_until(lambda: len(self.requests) >= count, timeout)
        return self.requests

    def _setup_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._completions)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        headers = dict(request.headers)
        if self.api_key is not None and headers.get("Authorization") != f"Bearer {self.api_key}":
            self.rejected.append(headers)
            return _error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _error(400, "We could not parse the JSON body of your request.")
        if (body.get("response_format") or {}).get("type") == "json_schema":
            return self._summary(ChatRequest(body, headers, time.monotonic()))
        if not body.get("stream"):
            return _error(400, "This fake serves streaming requests only.")
        chat = ChatRequest(body, headers, time.monotonic())
        self.requests.append(chat)
        try:
            out = self.policy(chat)
            result = await out if inspect.isawaitable(out) else out
        except Exception as exc:
            # The client only sees a 500; the log shows the test's policy bug itself.
            log.exception("policy failed")
            result = Fail(500, f"policy raised {exc!r}")
        if isinstance(result, str):
            result = Reply(result)
        if isinstance(result, Fail):
            chat.status = result.status
            chat.completed = True
            return _error(result.status, result.message, result.type, result.code)
        chat.status = 200
        return await self._stream(request, chat, result, str(body.get("model") or "gpt-4o"))

    def _summary(self, chat: ChatRequest) -> web.Response:
        self.summary_requests.append(chat)
        chat.completed = True
        if self.fail_summaries > 0:
            self.fail_summaries -= 1
            chat.status = 500
            return _error(500, "The server had an error while processing your request.")
        answer = self.summary_answer(chat) if callable(self.summary_answer) else self.summary_answer
        content = json.dumps(answer)
        chat.status = 200
        return web.json_response({
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(chat.body.get("model") or "gpt-4o"),
            "choices": [{"index": 0, "logprobs": None, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content, "refusal": None}}],
            "usage": self._usage(chat.body, content),
        })

    # -- bodies -------------------------------------------------------------------

    @staticmethod
    def _usage(body: dict[str, Any], completion_text: str) -> dict[str, Any]:
        prompt = max(1, len(json.dumps(body.get("messages", []))) // 4)
        completion = max(1, len(completion_text) // 4)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def _pieces(self, text: str) -> list[str]:
        n = self.chunk_chars
        return [text[i : i + n] for i in range(0, len(text), n)]

    def _deltas(self, result: Reply | ToolCalls) -> tuple[list[dict[str, Any]], str, str]:
        """The sequence of ``delta`` objects, the finish reason and the generated text."""
        deltas: list[dict[str, Any]] = []
        generated = result.text or ""
        if isinstance(result, Reply) or result.text:
            deltas.append({"role": "assistant", "content": "", "refusal": None})
            deltas.extend({"content": p} for p in self._pieces(result.text or ""))
        if isinstance(result, Reply):
            return deltas, "stop", generated
        for index, call in enumerate(result.calls):
            first: dict[str, Any] = {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call.id or f"call_{uuid.uuid4().hex[:24]}",
                        "type": "function",
                        "function": {"name": call.name, "arguments": ""},
                    }
                ]
            }
            if not deltas:
                first = {"role": "assistant", "content": None, "refusal": None, **first}
            deltas.append(first)
            arguments = json.dumps(call.arguments)
            generated += arguments
            deltas.extend(
                {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
                for piece in self._pieces(arguments)
            )
        return deltas, "tool_calls", generated

    async def _stream(
        self, request: web.Request, chat: ChatRequest, result: Reply | ToolCalls | Stall | Drop,
        model: str,
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
            }
        )
        include_usage = bool((chat.body.get("stream_options") or {}).get("include_usage"))
        base = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
        }
        fault = result if isinstance(result, (Stall, Drop)) else None
        stall = fault if isinstance(fault, Stall) else None
        drop = fault if isinstance(fault, Drop) else None
        deltas, finish, generated = self._deltas(fault.result if fault else result)
        chunks: list[dict[str, Any]] = [
            {
                **base,
                "choices": [{"index": 0, "delta": d, "logprobs": None, "finish_reason": None}],
            }
            for d in deltas
        ]
        chunks.append(
            {
                **base,
                "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}],
            }
        )
        if include_usage:
            for chunk in chunks:
                chunk["usage"] = None
            chunks.append({**base, "choices": [], "usage": self._usage(chat.body, generated)})
        try:
            await response.prepare(request)
            sent_chars = 0
            for chunk in chunks:
                if stall and sent_chars >= stall.after_chars:
                    await _pause(request, stall.seconds)
                    stall = None
                if drop and sent_chars >= drop.after_chars:
                    chat.disconnected = True
                    if request.transport is not None:
                        request.transport.abort()  # no final chunk: the client sees a cut stream
                    return response
                await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
                sent_chars += _chars(chunk)
                if self.chunk_delay > 0:
                    await asyncio.sleep(self.chunk_delay)
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
            chat.completed = True
        except ConnectionError:  # the client closed the stream (e.g. an interruption)
            chat.disconnected = True
        except asyncio.CancelledError:
            chat.disconnected = True
            raise
        return response


def _chars(chunk: dict[str, Any]) -> int:
    """Characters of text and function arguments one chunk carries."""
    count = 0
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") or {}
        count += len(delta.get("content") or "")
        for call in delta.get("tool_calls") or []:
            count += len((call.get("function") or {}).get("arguments") or "")
    return count


async def _pause(request: web.Request, seconds: float) -> None:
    """Sleep up to ``seconds``, ending as soon as the client has closed the connection."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if request.transport is None or request.transport.is_closing():
            return
        await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))


def _error(status: int, message: str, type_: str = "server_error", code: str | None = None) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": type_, "param": None, "code": code}}, status=status
    )
