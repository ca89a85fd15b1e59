"""The shared-model turn analyzers decide as Pipecat's own, per call, except that the caller's
loudness is smoothed less, so speech onsets are heard sooner, and that Silero does not run on
windows too quiet to be speech; and the caller's turns, as the call log gets them."""

from __future__ import annotations

import numpy as np
import pytest
from pipecat.audio.turn.base_turn_analyzer import EndOfTurnState
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState
from pipecat.frames.frames import CancelFrame, TranscriptionFrame, VADUserStartedSpeakingFrame
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    UserTurnMessageAddedMessage,
)
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.utils.time import time_now_iso8601

from config.settings import Settings
from pipeline.turns import VOLUME_SMOOTHING, SharedSileroVAD, SharedSmartTurn, caller_turns
from tests.audio import NAMES, SAMPLE_RATE, load, silence
from tests.fakes._pcm import ulaw_to_pcm16

CHUNK = 640  # 40 ms of 16-bit audio, as the pipeline's input frames carry
PARAMS = VADParams(start_secs=0.064, min_volume=0.4, stop_secs=0.2)


def pcm(*ulaw: bytes) -> bytes:
    return ulaw_to_pcm16(b"".join(ulaw))


def ready(analyzer: VADAnalyzer) -> VADAnalyzer:
    analyzer.set_sample_rate(SAMPLE_RATE)
    return analyzer


def stock(smoothing: float = VOLUME_SMOOTHING) -> VADAnalyzer:
    analyzer = SileroVADAnalyzer(sample_rate=SAMPLE_RATE, params=PARAMS)
    analyzer._smoothing_factor = smoothing
    return ready(analyzer)


async def states(analyzer: VADAnalyzer, audio: bytes) -> list[VADState]:
    return [await analyzer.analyze_audio(audio[i:i + CHUNK]) for i in range(0, len(audio), CHUNK)]


def _edges(heard: list[VADState]) -> list[tuple[str, int]]:
    """Where the VAD said speech started and stopped, in frames."""
    edges, before = [], VADState.QUIET
    for frame, state in enumerate(heard):
        if state == VADState.SPEAKING and before in (VADState.QUIET, VADState.STARTING):
            edges.append(("start", frame))
        elif state == VADState.QUIET and before in (VADState.SPEAKING, VADState.STOPPING):
            edges.append(("stop", frame))
        before = state
    return edges


async def test_shared_silero_keeps_each_calls_state_to_itself() -> None:
    # Two calls' audio, interleaved frame by frame through two shared analyzers: each must
    # match one that heard only its own call, so no model state leaks between calls.
    calls = [pcm(load("book_oil_change"), silence(1.0), load("thanks_goodbye")),
             pcm(silence(0.7), load("actually_wait"), silence(3.0), load("yes_thats_right"))]
    expected = [await states(ready(SharedSileroVAD(sample_rate=SAMPLE_RATE, params=PARAMS)), audio)
                for audio in calls]

    shared = [ready(SharedSileroVAD(sample_rate=SAMPLE_RATE, params=PARAMS)) for _ in calls]
    heard: list[list[VADState]] = [[], []]
    for i in range(0, max(map(len, calls)), CHUNK):
        for n, audio in enumerate(calls):
            if i < len(audio):
                heard[n].append(await shared[n].analyze_audio(audio[i:i + CHUNK]))

    assert heard == expected
    for states_of_call in heard:  # the comparison only means something if speech was heard
        assert VADState.SPEAKING in states_of_call and states_of_call[-1] != VADState.STARTING


async def test_silero_skips_quiet_windows_and_hears_speech_as_pipecats_analyzer_does() -> None:
    # The same starts and stops as Pipecat's analyzer with the same smoothing, each within two
    # 40 ms frames, for every recording; and on a silent line the model does not run at all.
    for name in NAMES:
        audio = pcm(silence(0.5), load(name), silence(0.8))
        ours = _edges(await states(ready(SharedSileroVAD(sample_rate=SAMPLE_RATE, params=PARAMS)), audio))
        pipecats = _edges(await states(stock(), audio))
        assert [kind for kind, _ in ours] == [kind for kind, _ in pipecats], name
        frames_apart = [abs(mine - theirs) for (_, mine), (_, theirs) in zip(ours, pipecats, strict=True)]
        assert max(frames_apart) <= 2, name
    quiet = ready(SharedSileroVAD(sample_rate=SAMPLE_RATE, params=PARAMS))
    assert set(await states(quiet, pcm(silence(2.0)))) == {VADState.QUIET}
    assert quiet._model._last_sr == 0  # reset, and never run since


async def test_speech_onset_is_not_held_back_by_loudness_smoothing() -> None:
    # Pipecat's own smoothing (0.2) held the volume gate shut for several windows after an onset:
    # ours never hears a sentence later, and hears those that Silero scores at once sooner.
    for name in NAMES:
        audio = pcm(silence(0.5), load(name), silence(0.5))
        ours = await states(ready(SharedSileroVAD(sample_rate=SAMPLE_RATE, params=PARAMS)), audio)
        pipecats = await states(stock(smoothing=0.2), audio)
        sooner = pipecats.index(VADState.SPEAKING) - ours.index(VADState.SPEAKING)
        assert sooner >= (1 if name in ("actually_wait", "speak_to_person") else 0), name


def test_shared_smart_turn_predicts_as_pipecats_analyzer_does() -> None:
    audio = np.frombuffer(pcm(load("book_oil_change")), np.int16).astype(np.float32) / 32768
    truncated = audio[: len(audio) // 2]  # "Hi, I'd like to…"
    stock, shared = LocalSmartTurnAnalyzerV3(), SharedSmartTurn()
    for analyzer in (stock, shared):
        analyzer.set_sample_rate(SAMPLE_RATE)

    for clip in (audio, truncated):
        want, got = stock._predict_endpoint(clip), shared._predict_endpoint(clip)
        assert got["probability"] == want["probability"]
        assert got["prediction"] == want["prediction"]
    assert SharedSmartTurn()._session is shared._session  # one model per process


async def test_smart_turn_threads_are_the_processs_and_outlive_a_call() -> None:
    ended, ongoing = SharedSmartTurn(), SharedSmartTurn()
    assert ended._model_executor is ongoing._model_executor
    await ended.cleanup()  # a call's end must not stop the threads the other calls use
    ongoing.set_sample_rate(SAMPLE_RATE)
    speech = pcm(load("book_oil_change"))
    for i in range(0, len(speech), CHUNK):
        ongoing.append_audio(speech[i:i + CHUNK], is_speech=True)
    ongoing.append_audio(pcm(silence(0.3)), is_speech=False)
    state, _ = await ongoing.analyze_end_of_turn()
    assert state == EndOfTurnState.COMPLETE  # "Hi, I'd like to book an oil change." is a whole turn


def test_a_caller_judged_unfinished_waits_only_turn_incomplete_seconds() -> None:
    # Pipecat ends a turn Smart-Turn judged unfinished only after 3 s of silence; ours after
    # TURN_INCOMPLETE_SECONDS, unless its words sound unfinished (then TURN_UNFINISHED_SECONDS,
    # longer than a pause inside a sentence: tests/pipeline/test_unfinished_turns.py).
    settings = Settings(_env_file=None)
    analyzer = caller_turns(settings).user_turn_strategies.stop[0]._turn_analyzer
    analyzer.set_sample_rate(SAMPLE_RATE)
    speech, quiet = pcm(load("paused_civic")), pcm(silence(0.02))
    for i in range(0, len(speech), CHUNK):
        analyzer.append_audio(speech[i:i + CHUNK], is_speech=True)
    states = [analyzer.append_audio(quiet, is_speech=False) for _ in range(100)]
    silent_for = (states.index(EndOfTurnState.COMPLETE) + 1) * 0.02
    assert settings.turn_incomplete_seconds < settings.turn_unfinished_seconds
    assert silent_for == pytest.approx(settings.turn_incomplete_seconds, abs=0.021)


@pytest.mark.parametrize("turn_detection", ["smart-turn", "silence"])
async def test_words_held_when_the_caller_hangs_up_still_become_a_turn(turn_detection: str) -> None:
    # The call log takes caller turns from `on_user_turn_message_added`: a caller who hangs up
    # mid-sentence leaves their words in the aggregator, which commits them at the cancel.
    settings = Settings(_env_file=None, turn_detection=turn_detection)
    caller, _ = LLMContextAggregatorPair(LLMContext(), user_params=caller_turns(settings))
    turns: list[str] = []

    @caller.event_handler("on_user_turn_message_added")
    async def _added(_caller: object, message: UserTurnMessageAddedMessage) -> None:
        turns.append(message.content)

    await run_test(
        caller,
        frames_to_send=[
            VADUserStartedSpeakingFrame(),
            TranscriptionFrame("I'd like to speak", "caller", time_now_iso8601()),
            TranscriptionFrame("to a", "caller", time_now_iso8601()),
            SleepFrame(0.05),
            CancelFrame(),
        ],
        send_end_frame=False,
    )
    assert turns == ["I'd like to speak to a"]
