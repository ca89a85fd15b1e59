"""What a phone line does to the agent's audio: Pipecat's Twilio serializer turns it into
G.711 mu-law at 8 kHz, and the other end decodes it again."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

from pipecat.frames.frames import OutputAudioRawFrame
from pipecat.serializers.twilio import TwilioFrameSerializer

from tests.fakes._pcm import ulaw_to_pcm16


async def over_the_phone(pcm: bytes, sample_rate: int) -> bytes:
    """16-bit `pcm` at `sample_rate` as heard at 8 kHz after a Twilio media stream."""
    serializer = TwilioFrameSerializer("MZ0", params=TwilioFrameSerializer.InputParams(auto_hang_up=False))
    await serializer.setup(SimpleNamespace(audio_in_sample_rate=sample_rate))  # type: ignore[arg-type]
    media = json.loads(await serializer.serialize(OutputAudioRawFrame(pcm, sample_rate, 1)))
    return ulaw_to_pcm16(base64.b64decode(media["media"]["payload"]))
