"""One Pipecat pipeline per phone call, assembled top to bottom like the diagram:

    Twilio media stream (or browser) in -> the agent's own echo out -> speech-to-text
    -> keys (whole entries) -> (card numbers out) -> caller turns (VAD, barge-in, silence)
    -> language model with tools -> (filler, apology)
    -> (heard, else said again, by a second voice or from a clip) -> text-to-speech
    -> paced as heard (held while the caller may be interrupting) -> (echo reference)
    -> Twilio media stream (or browser) out -> (latency) -> agent turns into the context
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pipecat.frames.frames import EndWorkerFrame, ErrorFrame, LLMMessagesAppendFrame, TTSSpeakFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.service_switcher import ServiceSwitcher, ServiceSwitcherStrategyFailover
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    AssistantTurnStoppedMessage,
    LLMContextAggregatorPair,
    UserTurnMessageAddedMessage,
)
from pipecat.utils.errors import ErrorCategory
from pipecat.workers.runner import WorkerRunner

from config import lines
from config.settings import Settings
from pipeline import metrics, plugins, services
from pipeline.keypad import call_keypad
from pipeline.lines import CallLine
from pipeline.opening import CallStart, Opening, open_call
from pipeline.plugins import PluginContext
from pipeline.services import SAMPLE_RATE
from pipeline.session import CallSession, Ending
from pipeline.tools import CallTools
from pipeline.turns import caller_turns, reprompt_when_silent
from processors.audio_ends_here import audio_ends_here
from processors.echo_gate import EchoGate
from processors.latency_meter import LatencyMeter
from processors.silence_budget import AnswerFailedFrame
from processors.speech_guard import Clip
from processors.voice_pacer import VoicePacer
from telephony.rest import TwilioRest
from telephony.texts import CallTexts, Texts
from telephony.twiml import desk_words, to_the_desk
from telephony.warm_transfer import DeskLegs, into_conference

log = logging.getLogger(__name__)

# What the model is told of a caller turn that had sound but no words the line carried.
NO_WORDS_HEARD = "(The caller spoke, but no words came through on the line.)"


async def run_call(line: CallLine, start: CallStart, settings: Settings,
                   twilio: TwilioRest | None, wrap_up: asyncio.Event,
                   desk: DeskLegs | None = None, texts: Texts | None = None) -> CallSession:
    """Hold the conversation on `line` (an accepted Twilio media stream, or a browser's
    connection) until the call ends, or the launcher, shutting down, sets `wrap_up`. `desk`
    rings the service desk for a warm transfer (without it, a transfer is a plain <Dial>)."""
    opening = await open_call(start, settings)
    session = CallSession(start, opening.access, opening.record)
    session.begin()
    if session.customer_id is not None:
        session.identified(session.customer_id)
    with metrics.CALLS_ACTIVE.track_inprogress():
        try:
            await _converse(line, session, opening, settings, twilio, wrap_up, desk, texts)
        except Exception:
            session.ending = Ending.FAILED
            log.exception("call %s: pipeline failed", start.call_sid)
        finally:
            await session.finish()
    return session


async def _converse(line: CallLine, session: CallSession, opening: Opening, settings: Settings,
                    twilio: TwilioRest | None, wrap_up: asyncio.Event, desk: DeskLegs | None,
                    texts: Texts | None) -> None:
    """The call's pipeline, from the greeting until either side hangs up."""
    start = session.start

    async def end_of_call() -> None:
        # Runs after the last audio was paced out and before the line closes.
        await _transfer_or_hang_up(session, settings, twilio)

    transport = line.transport(end_of_call)
    stt, llm, tts = await asyncio.to_thread(services.for_call, settings, opening.instructions)
    fallback = await asyncio.to_thread(services.fallback_tts, settings)
    # With a second voice, Pipecat's failover moves to it once the first is unusable, and the
    # speech guard as soon as the first fails to speak.
    voice = tts if fallback is None else ServiceSwitcher([tts, fallback], ServiceSwitcherStrategyFailover)
    # The tools' methods are Pipecat direct functions: the LLM registers them from the context.
    tools = CallTools(session, settings, CallTexts(texts, settings) if texts else None, desk=desk)
    context = LLMContext(tools=tools.schema())
    caller, agent = LLMContextAggregatorPair(context, user_params=caller_turns(settings))

    def gave_up() -> None:
        session.ending = Ending.NO_INPUT

    reprompt_when_silent(caller, lines.REPROMPTS, lines.GIVE_UP.format(shop=settings.shop_name), gave_up)

    # Every turn goes to the call log as the context gets it; at hang-up the caller aggregator
    # still commits the words it was holding, so a dropped call keeps what was said.
    @caller.event_handler("on_user_turn_stop_timeout")
    async def _no_words_heard(_caller: Any) -> None:
        # Pipecat ends a turn whose words never came, and asks the model nothing: the caller
        # would wait for the re-prompt. The model is told, and answers as to any turn.
        if not caller.aggregation_string().strip():
            await worker.queue_frame(LLMMessagesAppendFrame([{"role": "user", "content": NO_WORDS_HEARD}],
                                                            run_llm=True))

    @caller.event_handler("on_user_turn_message_added")
    async def _caller_said(_caller: Any, message: UserTurnMessageAddedMessage) -> None:
        await session.turn("caller", message.content)

    @agent.event_handler("on_assistant_turn_stopped")
    async def _agent_said(_agent: Any, message: AssistantTurnStoppedMessage) -> None:
        if message.content:  # empty when interrupted before a word was spoken
            await session.turn("agent", message.content)

    async def _clip_played(played: Clip) -> None:
        await session.turn("agent", played.text)

    async def _speech_lost(*, apologise: bool) -> None:
        """Speech-to-text or text-to-speech failed for good: an apology if the voice still
        works, then the end of the call, which hands the caller on (end_of_call)."""
        if session.ending is not Ending.CALLER_LEFT:
            return  # already ending
        session.ending = Ending.FAILED
        apology = [TTSSpeakFrame(lines.LINE_TROUBLE)] if apologise else []
        await worker.queue_frames([*apology, EndWorkerFrame(reason="speech lost")])

    async def _hand_on(apology: str, reason: str) -> None:
        """`apology`, then that the caller goes on with a person (as the busy answer says), or
        without a desk a request to call back; the end of the call then transfers or hangs up
        (end_of_call). Behind whatever the agent is saying; nothing if the call is already ending."""
        if session.ending is not Ending.CALLER_LEFT:
            return
        session.ending = Ending.TRANSFERRED if settings.service_desk_number else Ending.AGENT_HUNG_UP
        await worker.queue_frames([TTSSpeakFrame(desk_words(settings, apology)),
                                   EndWorkerFrame(reason=reason)])

    async def _model_lost() -> None:
        # Two answers running failed: the model cannot make the transfer it offered.
        await _hand_on(lines.MODEL_LOST, "language model lost")

    plugged = plugins.build(PluginContext(
        settings=settings, call_sid=start.call_sid, flag=session.flag, model_lost=_model_lost,
        voice_lost=lambda: _speech_lost(apologise=False), clip_played=_clip_played,
        second_voice=fallback))
    # The optional stages (in brackets above) plug in at the named points: pipeline/plugins.py.
    echo = EchoGate(margin_db=settings.echo_gate_db)
    pipeline = Pipeline([
        transport.input(),
        echo,
        stt,
        call_keypad(session, tools, llm, context),
        *plugged["after_stt"],
        caller,
        audio_ends_here(),
        *plugged["before_llm"],
        llm,
        *plugged["after_llm"],
        *plugged["before_tts"],
        voice,
        *plugged["after_tts"],
        VoicePacer(lead_seconds=settings.voice_lead_seconds),
        echo.voice(),
        transport.output(),
        audio_ends_here(),
        LatencyMeter(on_figures=session.figures, stt=stt.name, llm=llm.name),
        agent,
    ])
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(audio_in_sample_rate=SAMPLE_RATE, audio_out_sample_rate=SAMPLE_RATE,
                              enable_metrics=True, enable_usage_metrics=True),
        enable_rtvi=False,
        # Tracing's turn spans need Pipecat's turn tracking; otherwise it stays off, as LatencyMeter
        # measures turns and that observer sees every frame.
        enable_tracing=settings.otel_tracing,
        enable_turn_tracking=settings.otel_tracing,
        conversation_id=start.call_sid,
        idle_timeout_secs=None,  # silence is the caller aggregator's, answered with words, not a cut-off
    )

    @transport.event_handler("on_client_connected")
    async def _greet(_transport: Any, _ws: Any) -> None:
        await worker.queue_frames([TTSSpeakFrame(opening.greeting)])

    @transport.event_handler("on_client_disconnected")
    async def _caller_gone(_transport: Any, _ws: Any) -> None:
        await worker.cancel()

    @worker.event_handler("on_pipeline_error")
    async def _failed(_worker: Any, frame: ErrorFrame) -> None:
        if kind := _service_kind(frame):
            metrics.service_error(kind)
        if frame.fatal:
            # The worker cancels the pipeline next, without the end that hands the caller on.
            session.ending = Ending.FAILED
            await _transfer_or_hang_up(session, settings, twilio)
        elif frame.processor in (stt, voice) and not frame.processor.is_usable:
            # Gave up reconnecting, or every voice is gone; speech-to-text lost, the voice says so.
            await _speech_lost(apologise=frame.processor is stt)
        elif frame.processor is llm and frame.category is not ErrorCategory.APPLICATION:
            # The model's answer failed (a tool's own failure is APPLICATION, and answered).
            # Through the model, so it follows the failed response's end.
            await worker.queue_frame(AnswerFailedFrame(reason=frame.error))

    def _service_kind(frame: ErrorFrame) -> metrics.ServiceKind | None:
        if frame.processor is llm:
            return "tool" if frame.category is ErrorCategory.APPLICATION else "llm"
        if frame.processor is stt:
            return "stt"
        return "tts" if frame.processor in (voice, tts, fallback) else None

    async def _wrap_up_when_asked() -> None:
        await wrap_up.wait()
        await _hand_on(lines.WRAPPING_UP, "launcher shutting down")

    wrapping_up = asyncio.create_task(_wrap_up_when_asked(), name=f"wrap-up-{start.call_sid}")
    try:
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        await runner.run()
    finally:
        wrapping_up.cancel()
        line.report()


async def _transfer_or_hang_up(session: CallSession, settings: Settings, twilio: TwilioRest | None) -> None:
    """Transfer or hang up as the call decided; a caller who left needs neither."""
    if session.ending is Ending.CALLER_LEFT or twilio is None:
        return
    transfer = session.ending is Ending.TRANSFERRED and settings.service_desk_number
    try:
        if session.ending is Ending.FAILED:
            # The agent can no longer talk: Twilio's own voice says what happens, then the desk.
            transfer = bool(settings.service_desk_number)
            await twilio.follow(session.call_sid, to_the_desk(settings, "")[0])
        elif transfer and session.conference:
            await twilio.follow(session.call_sid, into_conference(session.conference))
        elif transfer:
            await twilio.transfer(session.call_sid, settings.service_desk_number)
        else:
            await twilio.hang_up(session.call_sid)
    except Exception:
        # The socket closes next, which ends a <Connect> call anyway.
        log.exception("call %s: could not %s through Twilio", session.call_sid,
                      "transfer" if transfer else "hang up")
