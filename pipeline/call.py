"""One Pipecat pipeline per phone call, assembled top to bottom like the diagram:

    Twilio media stream in -> speech-to-text -> (card numbers out, call log)
    -> caller turns (VAD, barge-in) -> language model with tools -> (filler, silence) -> text-to-speech
    -> Twilio media stream out -> (latency) -> agent turns into the context
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from fastapi import WebSocket
from pipecat.frames.frames import TTSSpeakFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport
from pipecat.workers.runner import WorkerRunner

import crm
from crm.identity import CallerAccess
from crm.settings import Settings
from pipeline import prompts, services
from pipeline.services import SAMPLE_RATE
from pipeline.session import CallSession, CallStart
from pipeline.telephony import Telephony
from pipeline.tools import CallTools
from pipeline.turns import caller_turns
from pipeline.twilio_serializer import CallEndingTwilioSerializer
from processors.audio_ends_here import audio_ends_here
from processors.card_redactor import CardRedactor
from processors.latency_meter import LatencyMeter
from processors.silence_watcher import SilenceWatcher
from processors.tool_filler import ToolFiller
from processors.transcript_recorder import TranscriptRecorder

log = logging.getLogger(__name__)

REPROMPTS = ["Are you still there?", "I'm still here if you need anything. Can you hear me?"]


async def caller_record(access: CallerAccess) -> dict[str, Any]:
    """The caller's own record as the call may see it; a lookup failure must not keep the
    phone from being answered."""
    try:
        return await access.own_record()
    except crm.CRMError:
        log.exception("caller lookup failed; answering as for an unknown caller")
        return {"found": False, "phone": access.number}


def reminded_appointment(start: CallStart, record: dict[str, Any]) -> dict[str, Any] | None:
    """On a reminder call, the upcoming appointment it is about."""
    if start.appointment_id is None:
        return None
    upcoming = record.get("upcoming_appointments") or []
    return next((a for a in upcoming if a["id"] == start.appointment_id), None)


async def run_call(
    websocket: WebSocket,
    start: CallStart,
    settings: Settings,
    telephony: Telephony | None,
) -> CallSession:
    """Hold the conversation on an accepted Twilio media stream until the call ends."""
    access = CallerAccess.of(start.customer_number, start.caller_id, settings.phone_region)
    record = await caller_record(access)
    appointment = reminded_appointment(start, record)
    session = CallSession(start, access, record)
    session.begin()
    if session.customer_id is not None:
        session.identified(session.customer_id)
    if appointment is not None:
        greeting = prompts.reminder_greeting(settings, record, appointment)
    else:
        greeting = prompts.greeting(settings, record)
    instructions = prompts.system_prompt(settings, datetime.now(settings.tz), record, start.caller_id,
                                         appointment)

    async def end_of_call() -> None:
        # Runs after the last audio was paced out and before the socket closes.
        await _hand_on(session, settings, telephony)

    # 40 ms input frames: fewer frames for every stage to handle, for at most 20 ms of delay.
    serializer = CallEndingTwilioSerializer(start.stream_sid, start.call_sid, end_of_call,
                                            input_messages=2)
    transport = FastAPIWebsocketTransport(websocket, FastAPIWebsocketParams(
        audio_in_enabled=True,
        audio_out_enabled=True,
        audio_out_end_silence_secs=1,
        serializer=serializer,
    ))
    stt, llm, tts = await asyncio.to_thread(services.for_call, settings, instructions)
    tools = CallTools(session, settings)
    tools.register(llm)
    context = LLMContext(tools=tools.schema())
    caller, agent = LLMContextAggregatorPair(context, user_params=caller_turns(settings))

    async def gave_up() -> None:
        session.ending = "no_input"

    pipeline = Pipeline([
        transport.input(),
        stt,
        CardRedactor(),  # card numbers out of each transcription
        TranscriptRecorder(on_turn=session.turn),
        caller,
        audio_ends_here(),
        CardRedactor(),  # and out of the turn, where speech-to-text split one over two transcriptions
        llm,
        ToolFiller(),
        SilenceWatcher(timeout_secs=settings.idle_reprompt_seconds, reprompts=REPROMPTS,
                       goodbye=f"I'll let you go. Thanks for calling {settings.shop_name}.",
                       on_give_up=gave_up),
        tts,
        transport.output(),
        audio_ends_here(),
        LatencyMeter(on_figures=session.figures),
        agent,
    ])
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(audio_in_sample_rate=SAMPLE_RATE, audio_out_sample_rate=SAMPLE_RATE,
                              enable_metrics=True, enable_usage_metrics=True),
        enable_rtvi=False,
        enable_turn_tracking=False,  # LatencyMeter measures turns; this observer sees every frame
        idle_timeout_secs=None,  # silence is the SilenceWatcher's job, with words, not a cut-off
    )

    @transport.event_handler("on_client_connected")
    async def _greet(_transport: Any, _ws: Any) -> None:
        await worker.queue_frames([TTSSpeakFrame(greeting)])

    @transport.event_handler("on_client_disconnected")
    async def _caller_gone(_transport: Any, _ws: Any) -> None:
        await worker.cancel()

    @worker.event_handler("on_pipeline_error")
    async def _failed(_worker: Any, frame: Any) -> None:
        if getattr(frame, "fatal", False):
            session.ending = "error"

    try:
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        await runner.run()
    except Exception:
        session.ending = "error"
        log.exception("call %s: pipeline failed", start.call_sid)
    finally:
        await session.finish()
        if serializer.dropped:
            log.warning("call %s: dropped %d stream messages (%s)", start.call_sid,
                        serializer.dropped.total(),
                        ", ".join(f"{count} x {reason}" for reason, count in serializer.dropped.items()))
    return session


async def _hand_on(session: CallSession, settings: Settings, telephony: Telephony | None) -> None:
    """Transfer or hang up as the call decided; a caller who left needs neither."""
    if session.ending == "caller" or telephony is None:
        return
    try:
        if session.ending == "transferred" and settings.service_desk_number:
            await telephony.transfer(session.call_sid, settings.service_desk_number)
        else:
            await telephony.hang_up(session.call_sid)
    except Exception:
        # The socket closes next, which ends a <Connect> call anyway.
        log.exception("call %s: could not %s through Twilio", session.call_sid,
                      "transfer" if session.ending == "transferred" else "hang up")
