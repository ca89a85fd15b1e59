"""Frames a processor must receive going upstream, inside `pipecat.tests.utils.run_test`; and
what a processor pushed down, in order (`PushOrder`).

`run_test` sends all its frames one way. A frame wrapped in `Upstream` travels down past the
processor untouched; `Reflect`, placed right after it, sends the wrapped frame back up, so
the processor gets it going upstream, as it gets the aggregators' and the output transport's
broadcasts in a real pipeline. The round trip lets frames sent after it overtake it, so a
test puts `settle()` after an `Upstream` whose order against the next frames matters.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from pipecat.frames.frames import DataFrame, EndFrame, Frame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.frame_processor import FrameCallback, FrameDirection, FrameProcessor
from pipecat.tests.utils import SleepFrame


@dataclass
class Upstream(DataFrame):
    """Carries `frame` down to `Reflect`; an interruption must not drop it on the way."""

    interruptible: bool = field(default=False, init=False)
    frame: Frame


class Reflect(FrameProcessor):
    """Sends what an `Upstream` carries back up; passes everything else on."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, Upstream):
            await self.push_frame(frame.frame, FrameDirection.UPSTREAM)
        else:
            await self.push_frame(frame, direction)


def with_upstream(processor: FrameProcessor) -> Pipeline:
    """`processor` followed by a `Reflect`, for `run_test`."""
    return Pipeline([processor, Reflect()])


def settle() -> SleepFrame:
    """A pause for the frames sent so far to be processed, round trips included."""
    return SleepFrame(0.05)


class PlayOut(FrameProcessor):
    """Holds the EndFrame for `secs`, as the output transport does while the last audio plays,
    and keeps every frame that arrives after it: nothing should follow the end of a call."""

    def __init__(self, secs: float) -> None:
        super().__init__()
        self._secs = secs
        self.after_end: list[Frame] = []
        self._ended = False

    async def queue_frame(
        self,
        frame: Frame,
        direction: FrameDirection = FrameDirection.DOWNSTREAM,
        callback: FrameCallback | None = None,
    ) -> None:
        if self._ended:
            self.after_end.append(frame)
        self._ended = self._ended or isinstance(frame, EndFrame)
        await super().queue_frame(frame, direction, callback)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, EndFrame):
            await asyncio.sleep(self._secs)
        await self.push_frame(frame, direction)


class PushOrder(FrameProcessor):
    """Notes what goes down in the order it was pushed: handled in the pushing task (direct
    mode), where run_test's own queues let an InterruptionFrame, a system frame, overtake."""

    def __init__(self) -> None:
        super().__init__(enable_direct_mode=True)
        self.down: list[Frame] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction is FrameDirection.DOWNSTREAM:
            self.down.append(frame)
        await self.push_frame(frame, direction)
