"""Speech over the agent's voice pauses it; a backchannel, a cough or the agent's own echo lets
it go on with no `clear`; words, or speech too long for a backchannel, cut it off. On recorded
phone audio, through the real speech-to-text client (against the fake) and the caller's turns."""

from __future__ import annotations

import numpy as np
import pytest
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    UserTurnMessageAddedMessage,
)
from pipecat.services.deepgram.stt import DeepgramSTTService
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.utils.time import time_now_iso8601

from config.settings import Settings
from pipeline.barge_in import is_backchannel
from pipeline.turns import caller_turns
from processors.echo_gate import CallerOverAgentFrame, EchoGate
from processors.voice_pacer import PauseVoiceFrame, ResumeVoiceFrame
from tests.audio import SAMPLE_RATE, TEXTS, load, silence
from tests.fakes._pcm import ulaw_to_pcm16
from tests.fakes.deepgram import FakeDeepgram

SETTINGS = Settings(_env_file=None)
STEP = SAMPLE_RATE // 50 * 2  # 20 ms of 16-bit audio, as Twilio sends it


@pytest.mark.parametrize("text", ["Mm-hmm.", "mhm", "Okay.", "Yeah, yeah.", "Right.", "Uh-huh",
                                  "Got it.", "I see", "Okay, sure.", "all right"])
def test_backchannels(text: str) -> None:
    assert is_backchannel(text)


@pytest.mark.parametrize("text", ["No.", "Wait.", "Actually,", "Okay, but", "Yeah, Tuesday",
                                  "Hold on", "Stop", "Sorry?", "What?"])
def test_not_backchannels(text: str) -> None:
    assert not is_backchannel(text)


def _caller() -> tuple[object, list[str]]:
    caller, _ = LLMContextAggregatorPair(LLMContext(), user_params=caller_turns(SETTINGS))
    turns: list[str] = []

    @caller.event_handler("on_user_turn_message_added")
    async def _added(_caller: object, message: UserTurnMessageAddedMessage) -> None:
        turns.append(message.content)

    return caller, turns


def _words(text: str, *, final: bool = True) -> Frame:
    kind = TranscriptionFrame if final else InterimTranscriptionFrame
    return kind(text, "caller", time_now_iso8601())


async def _over_the_agent(frames: list[Frame]) -> tuple[list[type[Frame]], list[str]]:
    caller, turns = _caller()
    down, _ = await run_test(caller, frames_to_send=[BotStartedSpeakingFrame(), *frames])
    return [type(f) for f in down if isinstance(f, (PauseVoiceFrame, ResumeVoiceFrame,
                                                    InterruptionFrame))], turns


async def test_a_backchannel_pauses_the_agent_and_lets_it_go_on() -> None:
    signals, turns = await _over_the_agent([
        VADUserStartedSpeakingFrame(), SleepFrame(0.1), _words("Mm", final=False), SleepFrame(0.2),
        VADUserStoppedSpeakingFrame(), SleepFrame(0.2), _words("Mm-hmm."), SleepFrame(1.5)])
    assert signals == [PauseVoiceFrame, ResumeVoiceFrame]
    assert turns == []  # nothing for the model to answer


async def test_words_over_the_agent_cut_it_off() -> None:
    signals, turns = await _over_the_agent([
        VADUserStartedSpeakingFrame(), SleepFrame(0.3), _words("Actually,", final=False),
        SleepFrame(0.3), VADUserStoppedSpeakingFrame(), _words("Actually, wait."), SleepFrame(1.5)])
    assert signals == [PauseVoiceFrame, InterruptionFrame]
    assert turns == ["Actually, wait."]


async def test_speech_longer_than_a_backchannel_cuts_the_agent_off() -> None:
    signals, _ = await _over_the_agent([VADUserStartedSpeakingFrame(),
                                        SleepFrame(SETTINGS.backchannel_seconds + 0.2)])
    assert signals == [PauseVoiceFrame, InterruptionFrame]


async def test_a_short_no_still_cuts_the_agent_off_once_transcribed() -> None:
    signals, turns = await _over_the_agent([
        VADUserStartedSpeakingFrame(), SleepFrame(0.25), VADUserStoppedSpeakingFrame(),
        SleepFrame(0.25), _words("No."), SleepFrame(1.5)])
    assert signals == [PauseVoiceFrame, ResumeVoiceFrame, InterruptionFrame]
    assert turns == ["No."]


async def test_the_first_sound_over_the_agent_pauses_it_and_a_click_lets_it_go_on() -> None:
    # The echo gate hears the caller's line rise before the VAD can confirm speech.
    signals, turns = await _over_the_agent([CallerOverAgentFrame(), SleepFrame(0.5)])
    assert signals == [PauseVoiceFrame, ResumeVoiceFrame]
    signals, turns = await _over_the_agent([
        CallerOverAgentFrame(), SleepFrame(0.1), VADUserStartedSpeakingFrame(), SleepFrame(0.3),
        _words("Actually,", final=False), SleepFrame(0.3), VADUserStoppedSpeakingFrame(),
        _words("Actually, wait."), SleepFrame(1.5)])
    assert signals == [PauseVoiceFrame, InterruptionFrame] and turns == ["Actually, wait."]


async def test_a_yes_over_the_agents_last_words_answers_it() -> None:
    # Said as the agent finished its question; transcribed once it had.
    signals, turns = await _over_the_agent([
        VADUserStartedSpeakingFrame(), SleepFrame(0.2), VADUserStoppedSpeakingFrame(),
        SleepFrame(0.1), BotStoppedSpeakingFrame(), SleepFrame(0.1), _words("Yes."),
        SleepFrame(1.5)])
    assert signals[:2] == [PauseVoiceFrame, ResumeVoiceFrame] and turns == ["Yes."]


async def test_with_the_agent_quiet_the_turn_starts_at_once() -> None:
    caller, turns = _caller()
    down, _ = await run_test(caller, frames_to_send=[
        VADUserStartedSpeakingFrame(), _words("Yes."), VADUserStoppedSpeakingFrame(), SleepFrame(1.5)])
    assert not any(isinstance(f, PauseVoiceFrame) for f in down)
    assert turns == ["Yes."]


def _noise(seconds: float, seed: int) -> bytes:
    """A cough or a bump: a burst of loud noise."""
    rng = np.random.default_rng(seed)
    burst = rng.normal(0, 6000, int(seconds * SAMPLE_RATE)) * np.hanning(int(seconds * SAMPLE_RATE))
    return burst.astype("<i2").tobytes()


def _echo(agent: bytes, delay: float, gain_db: float) -> bytes:
    """The agent's voice as it comes back on a speakerphone: later and quieter."""
    samples = np.frombuffer(agent, dtype="<i2").astype(np.float32) * 10 ** (gain_db / 20)
    return np.concatenate([np.zeros(int(delay * SAMPLE_RATE)), samples]).astype("<i2").tobytes()


async def _caller_over_the_agent(name: str, caller_audio: bytes, text: str | None,
                                 agent_audio: bytes = b"") -> list[type[Frame]]:
    """`caller_audio` (16-bit) in real time while the agent says `agent_audio`, through the
    echo gate, the speech-to-text client (the fake transcribes it as `text`) and the turns."""
    caller, _ = _caller()
    gate = EchoGate(margin_db=SETTINGS.echo_gate_db)
    frames: list[Frame] = [BotStartedSpeakingFrame()]
    agent_audio += bytes(max(0, len(caller_audio) - len(agent_audio)))
    for i in range(0, len(caller_audio), STEP):
        frames += [OutputAudioRawFrame(agent_audio[i:i + STEP], SAMPLE_RATE, 1),
                   InputAudioRawFrame(caller_audio[i:i + STEP], SAMPLE_RATE, 1), SleepFrame(0.02)]
    async with FakeDeepgram([text], final_delay=0.25) as deepgram:
        stt = DeepgramSTTService(api_key="key", base_url=deepgram.ws_base_url)
        down, _ = await run_test(Pipeline([gate.voice(), gate, stt, caller]), frames_to_send=frames,
                                 pipeline_params=PipelineParams(audio_in_sample_rate=SAMPLE_RATE))
    return [type(f) for f in down if isinstance(f, (PauseVoiceFrame, ResumeVoiceFrame, InterruptionFrame))]


@pytest.mark.parametrize("name", ["mm_hmm", "okay", "yeah", "right"])
async def test_recorded_backchannels_leave_the_agent_talking(name: str) -> None:
    audio = ulaw_to_pcm16(silence(0.3) + load(name) + silence(1.2))
    assert InterruptionFrame not in await _caller_over_the_agent(name, audio, TEXTS[name])


@pytest.mark.parametrize("seconds", [0.1, 0.2, 0.3])
async def test_coughs_and_bumps_leave_the_agent_talking(seconds: float) -> None:
    audio = (ulaw_to_pcm16(silence(0.3)) + _noise(seconds, seed=int(seconds * 10))
             + ulaw_to_pcm16(silence(1.2)))
    assert InterruptionFrame not in await _caller_over_the_agent("noise", audio, None)


async def test_a_recorded_interruption_cuts_the_agent_off() -> None:
    audio = ulaw_to_pcm16(silence(0.3) + load("actually_wait") + silence(0.5))
    signals = await _caller_over_the_agent("actually_wait", audio, TEXTS["actually_wait"])
    assert signals[:2] == [PauseVoiceFrame, InterruptionFrame]


@pytest.mark.parametrize("delay", [0.1, 0.25])
async def test_the_agents_own_echo_does_not_interrupt_it(delay: float) -> None:
    # The agent says a whole sentence; the caller's line carries it back 20 dB down.
    agent = ulaw_to_pcm16(load("book_oil_change") + load("reschedule"))
    echo = _echo(agent, delay, gain_db=-20) + ulaw_to_pcm16(silence(1.0))
    # Were it heard, the fake would transcribe the echo as the agent's words.
    signals = await _caller_over_the_agent("echo", echo, TEXTS["book_oil_change"], agent)
    assert signals == []
