"""OpenAI's Pipecat LLM service held to a phone call's time budget.

Pipecat's own `retry_on_timeout` only times the request until the response headers, retries
without any bound, and never retries an error; the SDK's retries are silent and back off for
seconds. Here each attempt must start answering (its first token) within `first_token_secs`,
an attempt that fails before saying anything is retried once at once, and the answer must
never pause longer than `first_token_secs` nor take longer than `answer_secs` in all.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
from openai import AsyncOpenAI, AsyncStream, DefaultAsyncHttpxClient
from openai.types.chat import ChatCompletionChunk
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.utils.errors import classify_http_exception

from pipeline.early_answer import ToolsWaitForTheTurn

log = logging.getLogger(__name__)


_HTTP_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary())


def _shared_http_client() -> httpx.AsyncClient:
    """One HTTP client for every call on this event loop. Pipecat makes one per call, and
    loading its TLS certificates blocks the event loop, every call's audio with it; shared,
    its connections also stay open from one call to the next."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # built outside a call: its own client
        return DefaultAsyncHttpxClient()
    if (client := _HTTP_CLIENTS.get(loop)) is None:
        client = _HTTP_CLIENTS[loop] = DefaultAsyncHttpxClient()
    return client


class AnswerTooSlow(TimeoutError):
    """The model kept the caller waiting past its budget."""


class BudgetedOpenAILLMService(ToolsWaitForTheTurn, OpenAILLMService):
    """An answer that fails for good (its retry spent, or not worth one) fails as Pipecat's
    service does: an ErrorFrame upstream, after any words it did say, and the response's end.
    A speculative answer's tools wait for its turn to end (pipeline/early_answer.py).
    """

    def __init__(self, *, first_token_secs: float, answer_secs: float, **kwargs: Any) -> None:
        # Set before the parent's __init__, which calls create_client.
        self._first_token_secs = first_token_secs
        self._answer_secs = answer_secs
        super().__init__(**kwargs)

    def create_client(self, api_key: str | None = None, base_url: str | None = None,
                      organization: str | None = None, project: str | None = None,
                      default_headers: Mapping[str, str] | None = None, **kwargs: Any) -> AsyncOpenAI:
        # No silent SDK retries (the one retry is ours, logged and inside the budget), and no
        # 600 s read: the socket may wait for the next bytes as long as an answer may pause.
        return AsyncOpenAI(
            api_key=api_key, base_url=base_url, organization=organization, project=project,
            default_headers=default_headers, http_client=_shared_http_client(), max_retries=0,
            timeout=httpx.Timeout(self._answer_secs, read=self._first_token_secs))

    async def get_chat_completions(self, context: LLMContext) -> AsyncStream[ChatCompletionChunk]:
        deadline = asyncio.get_running_loop().time() + self._answer_secs
        try:
            return await self._attempt(context, deadline)
        except Exception as exc:
            if classify_http_exception(exc).is_permanent:  # a bad key or request stays bad
                raise
            log.warning("language model failed before answering (%s); retrying once", exc)
        return await self._attempt(context, deadline)

    async def _attempt(self, context: LLMContext, deadline: float) -> AsyncStream[ChatCompletionChunk]:
        """One request, returned once its first token is in."""
        stream: AsyncStream[ChatCompletionChunk] | None = None
        try:
            async with asyncio.timeout(min(self._first_token_secs,
                                           deadline - asyncio.get_running_loop().time())):
                stream = await super().get_chat_completions(context)
                chunks = stream.__aiter__()
                opening = await _until_first_token(chunks)
        except BaseException as exc:
            if stream is not None:
                await stream.close()
            if isinstance(exc, TimeoutError):
                raise AnswerTooSlow(f"no first token within {self._first_token_secs} s") from None
            raise
        # An async generator is what Pipecat iterates and closes the stream through.
        return self._rest(stream, chunks, opening, deadline)  # type: ignore[return-value]

    async def _rest(self, stream: AsyncStream[ChatCompletionChunk],
                    chunks: AsyncIterator[ChatCompletionChunk], opening: list[ChatCompletionChunk],
                    deadline: float) -> AsyncIterator[ChatCompletionChunk]:
        """The answer: its opening chunks, then the rest while it keeps to the budget."""
        loop = asyncio.get_running_loop()
        try:
            for chunk in opening:
                yield chunk
            while True:
                wait = min(self._first_token_secs, deadline - loop.time())
                try:
                    async with asyncio.timeout(wait):
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise AnswerTooSlow(f"answer paused {self._first_token_secs} s or ran past"
                                        f" {self._answer_secs} s") from None
                yield chunk
        finally:
            await stream.close()


async def _until_first_token(chunks: AsyncIterator[ChatCompletionChunk]) -> list[ChatCompletionChunk]:
    """The chunks up to and with the first that carries words, a tool call or the finish (the
    first chunk holds only the role); fewer if the stream ends first."""
    opening: list[ChatCompletionChunk] = []
    async for chunk in chunks:
        opening.append(chunk)
        choice = chunk.choices[0] if chunk.choices else None
        if choice and (choice.delta.content or choice.delta.tool_calls or choice.finish_reason):
            break
    return opening
