"""How the agent hears the caller: when they start talking (and interrupt the agent), and
when they have finished their turn."""

from __future__ import annotations

from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams, VADState
from pipecat.frames.frames import Frame, InputAudioRawFrame
from pipecat.processors.aggregators.llm_response_universal import LLMUserAggregatorParams
from pipecat.processors.filters.function_filter import FunctionFilter
from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies

from crm.settings import Settings
from pipeline.services import SAMPLE_RATE


class InlineSileroVAD(SileroVADAnalyzer):
    """Silero on the event loop instead of a thread of its own per call: at 8 kHz it needs about
    3 ms per second of audio, less than handing every frame to a thread and back costs
    (bench/call_bench.py: 0.59 instead of 0.74 cores for 35 calls)."""

    async def analyze_audio(self, buffer: bytes) -> VADState:
        return self._run_analyzer(buffer)


def caller_turns(settings: Settings) -> LLMUserAggregatorParams:
    """How the agent hears the caller: Silero VAD for speech and barge-in, and either the
    local Smart-Turn model or a fixed pause to decide that the caller has finished."""
    stop = ([SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=settings.turn_silence_seconds)]
            if settings.turn_detection == "silence" else None)  # None: Smart-Turn v3
    return LLMUserAggregatorParams(
        vad_analyzer=InlineSileroVAD(sample_rate=SAMPLE_RATE, params=VADParams(
            start_secs=settings.vad_start_seconds, min_volume=settings.vad_min_volume,
            stop_secs=0.2)),
        user_turn_strategies=UserTurnStrategies(stop=stop),
    )


async def _not_caller_audio(frame: Frame) -> bool:
    # Caller audio is spent once speech recognition and turn detection have heard it; carried
    # on, each 20 ms frame would cost every later stage a hop, on every call.
    return not isinstance(frame, InputAudioRawFrame)


def caller_audio_ends_here() -> FunctionFilter:
    """Drops the caller's audio frames: placed after turn detection, the last stage that needs them."""
    return FunctionFilter(_not_caller_audio, filter_system_frames=True)
