"""Tiny PCM helpers shared by the fakes (G.711 mu-law, RMS, tones).

Why: the fakes must encode/decode telephone audio without ``audioop`` (removed
in Python 3.13) or any model; numpy lookup tables are exact and fast.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_BIAS = 0x84
_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])


def _build_decode_table() -> npt.NDArray[np.int16]:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def _build_encode_table() -> npt.NDArray[np.uint8]:
    # Same 14-bit algorithm as the ITU/Sun reference code that audioop uses.
    pcm14 = np.arange(-32768, 32768, dtype=np.int32) >> 2
    mask = np.where(pcm14 < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(pcm14), 8159) + (_BIAS >> 2)
    segment = np.searchsorted(_SEGMENT_ENDS, magnitude)
    mantissa = (magnitude >> (segment + 1)) & 0x0F
    code = np.where(segment >= 8, 0x7F, (segment << 4) | mantissa)
    return (code ^ mask).astype(np.uint8)


_DECODE = _build_decode_table()
_ENCODE = _build_encode_table()


def ulaw_to_pcm16(data: bytes) -> bytes:
    """Decode G.711 mu-law bytes to little-endian 16-bit PCM."""
    return _DECODE[np.frombuffer(data, dtype=np.uint8)].astype("<i2").tobytes()


def pcm16_to_ulaw(data: bytes) -> bytes:
    """Encode little-endian 16-bit PCM as G.711 mu-law bytes."""
    samples = np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2").astype(np.int32)
    return _ENCODE[samples + 32768].tobytes()


def rms(samples: npt.NDArray[np.int16]) -> float:
    """Root mean square of a block of 16-bit samples (0 for an empty block)."""
    if samples.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def tone(seconds: float, sample_rate: int, *, freq: float = 440.0, amplitude: int = 1000) -> bytes:
    """A sine tone as 16-bit little-endian PCM (low amplitude by default)."""
    n = round(seconds * sample_rate)
    t = np.arange(n, dtype=np.float64) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()
