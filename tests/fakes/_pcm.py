"""Tiny PCM helpers shared by the fakes (G.711 mu-law, RMS, tones).

Why: the fakes and benches must decode telephone audio without ``audioop`` (removed
in Python 3.13); a numpy lookup table is exact and fast.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_BIAS = 0x84


def _build_decode_table() -> npt.NDArray[np.int16]:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


_DECODE = _build_decode_table()


def ulaw_to_pcm16(data: bytes) -> bytes:
    """Decode G.711 mu-law bytes to little-endian 16-bit PCM."""
    return _DECODE[np.frombuffer(data, dtype=np.uint8)].astype("<i2").tobytes()


def pcm16_to_ulaw(data: bytes) -> bytes:
    """Encode little-endian 16-bit PCM as G.711 mu-law (the inverse of :func:`ulaw_to_pcm16`)."""
    samples = np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2").astype(np.int32)
    sign = np.where(samples < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(samples), 32635) + _BIAS
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def rms(samples: npt.NDArray[np.int16]) -> float:
    """Root mean square of a block of 16-bit samples (0 for an empty block)."""
    if samples.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def tone(seconds: float, sample_rate: int) -> bytes:
    """A quiet 440 Hz sine as 16-bit little-endian PCM: audible in a recording, never mistaken for speech."""
    t = np.arange(round(seconds * sample_rate), dtype=np.float64) / sample_rate
    return (1000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
