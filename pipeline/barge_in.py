"""When the caller's voice over the agent's is an interruption, and when it is only "mm-hmm".

Pipecat starts the caller's turn, and cuts the agent off, at the first sound the VAD takes
for speech. On a phone that includes "mm-hmm", "okay", a cough. Here, speech that starts while
the agent talks first pauses the agent's voice (processors/voice_pacer.py: the caller stops
hearing it within the pacer's lead), at the first sound the echo gate lets through
(processors/echo_gate.py) or else the VAD's onset; sound the VAD does not confirm as speech
within `CONFIRM_SECONDS` lets the agent go on. Speech is judged from its words and its length:

- words that are not a backchannel, or a voice longer than `backchannel_seconds`: the
  caller's turn starts, and the agent's answer is cut off (`clear`);
- a backchannel, a cough or a click: the agent goes on exactly where it paused, and the
  words stay out of the conversation. A transcript that arrives after the agent went on and
  turns out to be more than a backchannel ("No.") still starts the caller's turn.

With the agent quiet, the caller's turn starts at the VAD's onset, or at a transcript the VAD
missed, as with Pipecat's default strategies.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine
from typing import Any

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.turns.types import ProcessFrameResult
from pipecat.turns.user_start import BaseUserTurnStartStrategy

from processors.echo_gate import CallerOverAgentFrame
from processors.voice_pacer import PauseVoiceFrame, ResumeVoiceFrame

_BACKCHANNEL_WORDS = frozenset(" ".join((
    "mm mmm hm hmm mhm mmhmm uh huh uhhuh uhuh okay ok kay yeah yep yup yes right sure alright",
    "cool great good perfect gotcha")).split())
_BACKCHANNEL_PAIRS = frozenset({("got", "it"), ("i", "see"), ("all", "right")})
_WORD = re.compile(r"[a-z']+")
# How long after the first sound over the agent the VAD may take to confirm speech (it needs
# VAD_START_SECONDS of it, in 32 ms windows, from 40 ms frames).
CONFIRM_SECONDS = 0.3


def is_backchannel(text: str) -> bool:
    """Whether `text` only acknowledges the speaker ("mm-hmm", "okay, yeah", "got it")."""
    words = _WORD.findall(text.lower().replace("-", ""))
    while words:
        if tuple(words[:2]) in _BACKCHANNEL_PAIRS:
            words = words[2:]
        elif words[0] in _BACKCHANNEL_WORDS:
            words = words[1:]
        else:
            return False
    return True


class BackchannelAwareStart(BaseUserTurnStartStrategy):
    """Starts the caller's turn at their voice, except that over the agent's voice a
    backchannel only pauses it (see the module docstring)."""

    def __init__(self, *, backchannel_seconds: float, vad_stop_seconds: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # The VAD says the caller stopped `vad_stop_seconds` after their voice did.
        self._too_long_after = backchannel_seconds + vad_stop_seconds
        self._agent_speaking = False
        self._in_turn = False
        self._paused = False  # the agent's voice, held for the caller
        self._listening = False  # the caller spoke over the agent, and no verdict yet
        self._vad_speaking = False
        self._timer: asyncio.Task[None] | None = None  # confirming speech, or timing its length

    async def handle_user_turn_started(self) -> None:
        self._in_turn = True
        self._listening = self._paused = False
        await self._stop_timer()

    async def handle_user_turn_stopped(self) -> None:
        self._in_turn = False

    async def process_frame(self, frame: Frame) -> ProcessFrameResult:
        if isinstance(frame, BotStartedSpeakingFrame):
            self._agent_speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._agent_speaking = False
            if self._vad_speaking and self._listening and not self._in_turn:
                # No longer over the agent: the caller simply has the turn.
                await self.trigger_user_turn_started()
        elif isinstance(frame, CallerOverAgentFrame) and self._agent_speaking and not (
                self._in_turn or self._paused):
            await self._hold_voice(self._unless_confirmed(), "confirm_speech")
        elif isinstance(frame, VADUserStartedSpeakingFrame):
            self._vad_speaking = True
            if self._in_turn:
                return ProcessFrameResult.CONTINUE
            if not self._agent_speaking:
                await self.trigger_user_turn_started()
                return ProcessFrameResult.STOP
            await self._hold_voice(self._longer_than_a_backchannel(), "backchannel_timer")
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self._vad_speaking = False
            if not self._paused:
                return ProcessFrameResult.CONTINUE
            # Short enough for a backchannel, and no word said otherwise yet: go on.
            await self._stop_timer()
            await self._release_voice()
        elif isinstance(frame, (TranscriptionFrame, InterimTranscriptionFrame)) and not self._in_turn:
            return await self._judge(frame)
        return ProcessFrameResult.CONTINUE

    async def _judge(self, frame: TranscriptionFrame | InterimTranscriptionFrame) -> ProcessFrameResult:
        if not frame.text.strip():
            return ProcessFrameResult.CONTINUE
        # With the agent done by the time the words are in, "Yes." answered it.
        if not self._agent_speaking or not is_backchannel(frame.text):
            await self.trigger_user_turn_started()
            return ProcessFrameResult.STOP
        if isinstance(frame, TranscriptionFrame):
            await self.trigger_reset_aggregation()  # kept out of the turn that comes next
            self._listening = self._paused
        return ProcessFrameResult.STOP

    async def _hold_voice(self, timer: Coroutine[Any, Any, None], name: str) -> None:
        if not self._paused:
            self._paused = True
            await self.push_frame(PauseVoiceFrame())
        self._listening = True
        await self._stop_timer()
        self._timer = self.task_manager.create_task(timer, f"{self}::{name}")

    async def _release_voice(self) -> None:
        if self._paused:
            self._paused = False
            await self.push_frame(ResumeVoiceFrame())

    async def _unless_confirmed(self) -> None:
        await asyncio.sleep(CONFIRM_SECONDS)
        self._timer = None
        if not self._vad_speaking:  # a click, a bump: not speech
            self._listening = False
            await self._release_voice()

    async def _longer_than_a_backchannel(self) -> None:
        await asyncio.sleep(self._too_long_after)
        self._timer = None
        await self.trigger_user_turn_started()

    async def _stop_timer(self) -> None:
        if self._timer is not None:
            timer, self._timer = self._timer, None
            await self.task_manager.cancel_task(timer)
