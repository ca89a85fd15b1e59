"""After a call: one model request turns its call log into the service advisor's summary.

Off the call's path: closing the call log makes it due (crm/summaries.py), and the launcher's
worker picks due calls up every `POLL_SECONDS`, so a slow or failing model never holds a call
or its log up. The request goes to the configured OpenAI-compatible endpoint (OPENAI_BASE_URL,
OPENAI_MODEL) with a JSON schema as its response format; a failed one (no answer, an error, an
answer not in the schema) is tried again later. Phone numbers and email addresses are masked in
the transcript the model reads, so none can reach the summary; logs name a call by its SID only.
"""

from __future__ import annotations

import asyncio
import json
import logging

from openai import AsyncOpenAI

import crm
from config.log_privacy import mask
from config.settings import Settings, get_settings
from crm import summaries
from crm.summaries import CallSummary, DueCall

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0
REQUEST_SECONDS = 60.0

INSTRUCTIONS = """\
You write the note a car dealership's service advisor reads about a phone call the shop's
virtual assistant took. You get the call's transcript and its outcome as JSON. Fill in the
schema from what was said only: the reason for calling in one sentence, the vehicle, what was
booked, moved, cancelled, confirmed or added, questions left unanswered, and whether a person
should call the customer back (asked for, a problem the assistant could not solve, a call cut
off before the customer's need was met). Be brief and factual. Never write phone numbers, email
addresses or card numbers."""


def request_messages(call: DueCall) -> list[dict[str, str]]:
    """The request's messages: the call as the model reads it, numbers and addresses masked."""
    said = [{"role": turn["role"], "text": mask(turn["text"])} for turn in call.transcript]
    details = {"direction": call.direction, "outcome": call.outcome, "transcript": said}
    return [{"role": "system", "content": INSTRUCTIONS},
            {"role": "user", "content": json.dumps(details, ensure_ascii=False)}]


async def summarise(client: AsyncOpenAI, model: str, call: DueCall) -> CallSummary:
    """One request; raises whatever went wrong (the model's error, a timeout, an answer out of shape)."""
    answer = await client.chat.completions.parse(
        model=model, messages=request_messages(call), response_format=CallSummary, temperature=0)
    summary = answer.choices[0].message.parsed
    if summary is None:
        raise ValueError("the model refused or answered nothing")
    return summary


def _why(exc: Exception) -> str:
    """A failure fit for a log line: its type and HTTP status, never its text (it may quote the call)."""
    status = getattr(exc, "status_code", None)
    return type(exc).__name__ + (f" {status}" if status else "")


async def _summarise_one(client: AsyncOpenAI, model: str, call: DueCall) -> None:
    try:
        summary = await summarise(client, model, call)
    except Exception as exc:
        retry = await summaries.retry_later(call)
        if retry is None:
            log.error("call %s: no summary after %d tries (%s)", call.call_sid, call.attempts, _why(exc))
        else:
            log.warning("call %s: summary request failed (%s); trying again in %g s", call.call_sid,
                        _why(exc), retry)
        return
    await summaries.store(call.call_sid, summary)


def _client(settings: Settings) -> AsyncOpenAI:
    # Our own retries only (crm/summaries.py), so a failing endpoint is never asked twice at once.
    return AsyncOpenAI(api_key=settings.openai_api_key or "none", base_url=settings.openai_base_url,
                       max_retries=0, timeout=REQUEST_SECONDS)


async def run_summary_worker() -> None:
    """Summarise due calls, one at a time, every `POLL_SECONDS` until cancelled (the launcher runs one)."""
    settings = get_settings()
    if not (settings.openai_api_key or settings.openai_base_url):
        if settings.llm_provider != "openai":  # else the banner says the endpoint is missing
            log.info("call summaries off: no OPENAI_BASE_URL or OPENAI_API_KEY")
        return
    client = _client(settings)
    try:
        while True:
            try:
                while (call := await summaries.claim_due()) is not None:
                    await _summarise_one(client, settings.openai_model, call)
            except crm.DatabaseUnavailable:
                pass  # down: due calls wait in the database for the next round
            except Exception:
                log.exception("call summaries failed")
            await asyncio.sleep(POLL_SECONDS)
    finally:
        await client.close()
