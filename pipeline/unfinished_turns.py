"""A caller who stops after "I need", "um" or "for my" has not finished, whatever the pause.

Smart-Turn judges the end of a turn from the voice alone, and a fixed pause from the clock;
both take a breath in the middle of "I need... an oil change" for the end. The words say
otherwise: an English turn does not end on a filler, a conjunction, a preposition or an
article. Pipecat's stop strategies are kept as they are, and a turn they end on such words is
held until the caller has been quiet for `hold_seconds`; speaking again in the meantime
continues the same turn, so the fragment is never answered on its own.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from pipecat.frames.frames import (
    Frame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.turns.types import ProcessFrameResult


def _words(*groups: str) -> frozenset[str]:
    return frozenset(" ".join(groups).split())


FILLERS = _words("um umm uh uhh uhm er erm ah hmm mm")
# Words after which an English sentence goes on, even when the recogniser put a full stop.
LEADS_ON = FILLERS | _words(
    # conjunctions and relatives
    "and but or so because cause if that which who whose when where while although though",
    "than unless until whether",
    # prepositions
    "to for of in on at with from by about into onto after before around between near",
    "past over under through during without",
    # articles, possessives and other determiners
    "a an the my your our their his her its this these those some any another each every",
    # subject pronouns
    "i we they he she")
# Words that end a sentence only when the recogniser heard one end ("Yes, I do." but "Could
# we do"; "That's all I need." but "I need"): modals and auxiliaries, and verbs that want an object.
ENDS_ONLY_WITH_A_STOP = _words(
    "am is are was were be been being do does did can could will would shall should may",
    "might must have has had need needs needed want wants wanted like gonna wanna")

_WORD = re.compile(r"[a-z']+")


def sounds_unfinished(text: str) -> bool:
    """Whether the caller's words so far stop where an English sentence cannot end."""
    text = text.strip().lower()
    if text.endswith((",", "-", "...", "\u2026")):
        return True
    words = _WORD.findall(text)
    if not words or text.endswith(("?", "!")):
        return False
    last = words[-1].removesuffix("'s").removesuffix("'d").removesuffix("'ll")
    if last in LEADS_ON:
        return True
    return last in ENDS_ONLY_WITH_A_STOP and not text.endswith(".")


class HoldsUnfinishedTurns:
    """Mixin for a Pipecat stop strategy: a turn it ends on unfinished words waits until the
    caller has been quiet `hold_seconds`, and continues if they speak again before."""

    def __init__(self, *, hold_seconds: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._hold_seconds = hold_seconds
        self._voice_ended_at = 0.0  # when the caller was last heard (time.monotonic)
        self._held: asyncio.Task[None] | None = None  # ends a held turn
        self._last_words = ""  # the latest transcript of the turn

    async def process_frame(self, frame: Frame) -> ProcessFrameResult:
        if isinstance(frame, VADUserStartedSpeakingFrame):
            await self._release_hold()
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self._voice_ended_at = time.monotonic() - frame.stop_secs
        elif isinstance(frame, TranscriptionFrame):
            self._last_words = frame.text
        return await super().process_frame(frame)

    async def handle_user_turn_started(self) -> None:
        await self._release_hold()
        self._last_words = ""
        await super().handle_user_turn_started()

    async def handle_user_turn_stopped(self) -> None:
        await self._release_hold()
        await super().handle_user_turn_stopped()

    async def trigger_user_turn_stopped(self, *, enable_user_speaking_frames: bool | None = None) -> None:
        # Asked again while holding (a later transcript of the same pause): the latest words decide.
        await self._release_hold()
        wait = self._voice_ended_at + self._hold_seconds - time.monotonic()
        if wait > 0 and sounds_unfinished(self._last_words):
            self._held = self.task_manager.create_task(
                self._end_held_turn(wait, enable_user_speaking_frames), f"{self}::held_turn")
            return
        await super().trigger_user_turn_stopped(enable_user_speaking_frames=enable_user_speaking_frames)

    async def _end_held_turn(self, wait: float, enable_user_speaking_frames: bool | None) -> None:
        await asyncio.sleep(wait)
        self._held = None
        await super().trigger_user_turn_stopped(enable_user_speaking_frames=enable_user_speaking_frames)

    async def _release_hold(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            await self.task_manager.cancel_task(held)
