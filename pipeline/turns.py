"""How the agent hears the caller: when they start talking (and interrupt the agent), when
they have finished their turn, and when they have gone quiet.

Both models are loaded once per process and shared by every call, as are the threads Smart-Turn
runs on; each call keeps only its own model state. A copy per call blocked the event loop at each
call's start, took memory per call, and with many copies every Silero inference ran slower, as
they no longer fitted the CPU caches (bench/call_bench.py measures it).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

from onnxruntime import InferenceSession
from pipecat.audio.turn.smart_turn.base_smart_turn import BaseSmartTurn, SmartTurnParams
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from pipecat.audio.vad.silero import SileroOnnxModel, SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState
from pipecat.frames.frames import EndWorkerFrame, TTSSpeakFrame, VADUserStoppedSpeakingFrame
from pipecat.processors.aggregators.llm_response_universal import (
    LLMUserAggregator,
    LLMUserAggregatorParams,
)
from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy, TurnAnalyzerUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies

from config.settings import Settings
from pipeline.barge_in import BackchannelAwareStart
from pipeline.early_answer import AnswersDuringTheWait
from pipeline.early_finalize import FinalizesAtPauses
from pipeline.services import SAMPLE_RATE
from pipeline.unfinished_turns import HoldsUnfinishedTurns


@cache
def _silero() -> SileroOnnxModel:
    return SileroVADAnalyzer(sample_rate=SAMPLE_RATE)._model


@cache
def _smart_turn() -> InferenceSession:
    return LocalSmartTurnAnalyzerV3()._session


def load_models() -> None:
    """Load both models now, so that no caller waits for it."""
    _silero()
    _smart_turn()


# Pipecat smooths the caller's loudness by 0.2 per window, from 0 on a quiet line, so the volume
# gate (VAD_MIN_VOLUME), not Silero, decided most onsets, several windows late. At 0.5 it opens
# before Silero's score rises; the threshold is unchanged. The price: short scraps of voice now
# count as speech more often (and interrupt the agent). bench/vad_bench.py measures both.
VOLUME_SMOOTHING = 0.5
# Silence after which the VAD says the caller stopped (Pipecat's default, and what Smart-Turn
# and the barge-in timing are tuned for).
VAD_STOP_SECONDS = 0.2
# Silence after which speech-to-text is asked for what the caller said so far: the final is
# then in hand sooner after Smart-Turn's verdict at the VAD's stop (bench/call_bench.py).
FINALIZE_AFTER_SECONDS = 0.1


class SharedSileroVAD(SileroVADAnalyzer):
    """Pipecat's Silero VAD on the process's one loaded model, run on the event loop: at 8 kHz
    an inference costs less than handing every frame to a thread and back (bench/call_bench.py)."""

    def __init__(self, *, sample_rate: int, params: VADParams) -> None:
        # Skips SileroVADAnalyzer.__init__, which would load the model again; sets what it sets.
        VADAnalyzer.__init__(self, sample_rate=sample_rate, params=params)
        self._smoothing_factor = VOLUME_SMOOTHING
        self._model = copy.copy(_silero())  # shares the ONNX session, not the recurrent state
        self._model.reset_states()
        self._windows_since_reset = 0
        self._low_confidence_windows = 0
        self._volume = 0.0  # of the window being analysed
        self._too_quiet = False  # the model has not run since the line went quiet

    async def analyze_audio(self, buffer: bytes) -> VADState:
        return self._run_analyzer(buffer)

    def voice_confidence(self, buffer: bytes) -> float:
        # Pipecat takes a window for speech only when it is both likely speech and loud enough.
        # The loudness is cheap and Silero is not, so it goes first: a window too quiet to be
        # speech is not run through the model, which is then reset (as Pipecat resets it in
        # quiet) rather than carry its state across the gap.
        self._volume = super()._get_smoothed_volume(buffer)
        if self._volume < self._params.min_volume:
            if not self._too_quiet:
                self._too_quiet = True
                self._model.reset_states()
            return 0.0
        self._too_quiet = False
        return super().voice_confidence(buffer)

    def _get_smoothed_volume(self, audio: bytes) -> float:
        return self._volume  # measured once per window, in voice_confidence

    @property
    def pause_seconds(self) -> float:
        """How long the caller has been quiet in a pause the VAD has not yet called the end of
        their speech; 0 while they speak, and once it has."""
        if self._vad_state != VADState.STOPPING:
            return 0.0
        return self._vad_stopping_count * self._vad_frames / self.sample_rate


@cache
def _smart_turn_threads() -> ThreadPoolExecutor:
    # One thread per core for all calls. Pipecat starts one per call, which added memory
    # per call for no quicker replies (bench/call_bench.py --turn-detection smart-turn). One
    # thread for all was slower with many calls, the inferences queueing behind each other.
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="smart-turn")


class SharedSmartTurn(LocalSmartTurnAnalyzerV3):
    """Pipecat's Smart-Turn v3 on the process's one loaded model and its own threads; each call
    keeps only its audio buffer."""

    def __init__(self, params: SmartTurnParams | None = None) -> None:
        # Skips LocalSmartTurnAnalyzerV3.__init__, which would load the model again.
        BaseSmartTurn.__init__(self, params=params)
        self._log_data = False  # never write callers' voices to disk
        self._session = _smart_turn()

    @property
    def _model_executor(self) -> ThreadPoolExecutor:
        return _smart_turn_threads()


class SmartTurnStop(HoldsUnfinishedTurns, AnswersDuringTheWait, FinalizesAtPauses,
                    TurnAnalyzerUserTurnStopStrategy):
    """Pipecat's Smart-Turn stop strategy, holding turns that end on unfinished words, asking
    for the words at the start of each pause, and answering a turn whose words are all in
    while only Smart-Turn's verdict holds it open; and asking the model only about speech that
    started a turn. Pipecat asks it at every pause of every sound the VAD hears, "mm-hmm" over
    the agent included, and an inference costs more than anything else a call does
    (bench/call_bench.py)."""

    async def _handle_vad_user_stopped_speaking(self, frame: VADUserStoppedSpeakingFrame) -> None:
        if self._caller_turn:  # FinalizesAtPauses keeps it
            await super()._handle_vad_user_stopped_speaking(frame)
            return
        # Speech that started no turn (a backchannel, a cough): nothing to end, nothing to ask.
        self._vad_user_speaking = False
        self._turn_analyzer.clear()


class SilenceStop(HoldsUnfinishedTurns, SpeechTimeoutUserTurnStopStrategy):
    """Pipecat's fixed-pause stop strategy, holding turns that end on unfinished words."""


def caller_turns(settings: Settings) -> LLMUserAggregatorParams:
    """How the agent hears the caller: Silero VAD for speech and barge-in (a backchannel over
    the agent only pauses it, with `barge_in` "pause"), either the local Smart-Turn model or a
    fixed pause to decide that the caller has finished (held while their words sound
    unfinished; with Smart-Turn, their words asked for early in each pause), and Pipecat's
    idle timer for a caller gone quiet (answered by `reprompt_when_silent`)."""
    hold = settings.turn_unfinished_seconds
    vad = SharedSileroVAD(sample_rate=SAMPLE_RATE, params=VADParams(
        start_secs=settings.vad_start_seconds, min_volume=settings.vad_min_volume,
        stop_secs=VAD_STOP_SECONDS))
    stop = (SilenceStop(hold_seconds=hold, user_speech_timeout=settings.turn_silence_seconds)
            if settings.turn_detection == "silence"
            else SmartTurnStop(hold_seconds=hold, pause_seconds=lambda: vad.pause_seconds,
                               finalize_after_seconds=FINALIZE_AFTER_SECONDS,
                               turn_analyzer=SharedSmartTurn(
                                   SmartTurnParams(stop_secs=settings.turn_incomplete_seconds))))
    return LLMUserAggregatorParams(
        vad_analyzer=vad,
        user_turn_strategies=UserTurnStrategies(
            start=([BackchannelAwareStart(backchannel_seconds=settings.backchannel_seconds,
                                          vad_stop_seconds=VAD_STOP_SECONDS)]
                   if settings.barge_in == "pause" else None),
            stop=[stop]),
        user_idle_timeout=settings.idle_reprompt_seconds,
    )


def reprompt_when_silent(caller: LLMUserAggregator, reprompts: Sequence[str], goodbye: str,
                         on_give_up: Callable[[], None]) -> None:
    """Answer each of the caller aggregator's idle events with the next of `reprompts`, then
    with `goodbye` and the end of the call; a caller turn starting resets the count.

    Pipecat times the silence and keeps it from counting while the agent speaks, a tool runs
    or the caller is mid-turn; what it lacks is what to say, and when to stop asking.
    """
    unanswered = 0  # re-prompts spoken since the caller last spoke

    @caller.event_handler("on_user_turn_started")
    async def _caller_spoke(_caller: LLMUserAggregator, _strategy: Any) -> None:
        nonlocal unanswered
        unanswered = 0

    @caller.event_handler("on_user_turn_idle")
    async def _caller_silent(_caller: LLMUserAggregator) -> None:
        nonlocal unanswered
        if unanswered < len(reprompts):
            unanswered += 1
            await caller.push_frame(TTSSpeakFrame(reprompts[unanswered - 1]))
            return
        on_give_up()
        await caller.push_frame(TTSSpeakFrame(goodbye))
        # Downstream behind the goodbye, as TTS and the output transport hold it until the
        # goodbye has played; the worker then sends the EndFrame.
        await caller.push_frame(EndWorkerFrame(reason="no input from the caller"))
