"""How the agent hears the caller: when they start talking (and interrupt the agent), and
when they have finished their turn.

Both models are loaded once per process and shared by every call, as are the threads Smart-Turn
runs on; each call keeps only its own model state. A copy per call cost ~25 ms (Silero) and ~30 ms
(Smart-Turn) of blocked event loop at each call's start, and with 50 copies every Silero inference
ran about 3x slower, as they no longer fit the CPU caches; bench/call_bench.py at 50 calls went
from ~12.5 to ~2.6 MiB per call.
"""

from __future__ import annotations

import copy
import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache

from onnxruntime import InferenceSession
from pipecat.audio.turn.smart_turn.base_smart_turn import BaseSmartTurn
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from pipecat.audio.vad.silero import SileroOnnxModel, SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState
from pipecat.processors.aggregators.llm_response_universal import LLMUserAggregatorParams
from pipecat.turns.user_stop import (
    SpeechTimeoutUserTurnStopStrategy,
    TurnAnalyzerUserTurnStopStrategy,
)
from pipecat.turns.user_turn_strategies import UserTurnStrategies

from config.settings import Settings
from pipeline.services import SAMPLE_RATE


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


# Pipecat smooths the caller's loudness by 0.2 per 32 ms window, from 0 on a quiet line, so
# speech took four windows to pass VAD_MIN_VOLUME: the volume gate, not Silero, decided most
# onsets. At 0.5 it passes in two, before Silero's score rises; the threshold is unchanged.
# bench/vad_bench.py: speech heard a median 115 ms after its onset instead of 170. The price:
# 6 of 8 scraps of voice 100 ms long now count as speech (and interrupt the agent), against 0.
VOLUME_SMOOTHING = 0.5


class SharedSileroVAD(SileroVADAnalyzer):
    """Pipecat's Silero VAD on the process's one loaded model, run on the event loop: at 8 kHz
    it needs about 3 ms per second of audio, less than handing every frame to a thread and back
    costs (bench/call_bench.py: 0.59 instead of 0.74 cores for 35 calls)."""

    def __init__(self, *, sample_rate: int, params: VADParams) -> None:
        # Skips SileroVADAnalyzer.__init__, which would load the model again; sets what it sets.
        VADAnalyzer.__init__(self, sample_rate=sample_rate, params=params)
        self._smoothing_factor = VOLUME_SMOOTHING
        self._model = copy.copy(_silero())  # shares the ONNX session, not the recurrent state
        self._model.reset_states()
        self._windows_since_reset = 0
        self._low_confidence_windows = 0

    async def analyze_audio(self, buffer: bytes) -> VADState:
        return self._run_analyzer(buffer)


@cache
def _smart_turn_threads() -> ThreadPoolExecutor:
    # One thread per core for all calls. Pipecat starts one per call, which cost ~11 MiB per
    # call against ~5 MiB (bench/call_bench.py --turn-detection smart-turn, 10-20 calls on 2
    # cores), for no quicker replies. One thread for all was slower from 15 calls, the
    # inferences queueing behind each other.
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="smart-turn")


class SharedSmartTurn(LocalSmartTurnAnalyzerV3):
    """Pipecat's Smart-Turn v3 on the process's one loaded model and its own threads; each call
    keeps only its audio buffer."""

    def __init__(self) -> None:
        # Skips LocalSmartTurnAnalyzerV3.__init__, which would load the model again.
        BaseSmartTurn.__init__(self)
        self._log_data = False  # never write callers' voices to disk
        self._session = _smart_turn()

    @property
    def _model_executor(self) -> ThreadPoolExecutor:
        return _smart_turn_threads()


def caller_turns(settings: Settings) -> LLMUserAggregatorParams:
    """How the agent hears the caller: Silero VAD for speech and barge-in, and either the
    local Smart-Turn model or a fixed pause to decide that the caller has finished."""
    stop = (SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=settings.turn_silence_seconds)
            if settings.turn_detection == "silence"
            else TurnAnalyzerUserTurnStopStrategy(turn_analyzer=SharedSmartTurn()))
    return LLMUserAggregatorParams(
        vad_analyzer=SharedSileroVAD(sample_rate=SAMPLE_RATE, params=VADParams(
            start_secs=settings.vad_start_seconds, min_volume=settings.vad_min_volume,
            stop_secs=0.2)),
        user_turn_strategies=UserTurnStrategies(stop=[stop]),
    )
