"""Regenerate the caller speech fixtures (``*.ulaw``) in this folder.

Why: end-to-end tests need real speech (so Silero VAD and the fake Deepgram's
energy segmenter see genuine voiced audio), but must not synthesise it at test
time. This script documents exactly how the committed files were made; tests
only read the ``.ulaw`` files through :func:`tests.audio.load`.

Each fixture is 8 kHz mono G.711 mu-law without a header (what Twilio Media
Streams carry), made like this:

1. ``espeak-ng -v en-us -s 150 -w tmp.wav TEXT`` (22.05 kHz 16-bit speech; commas
   are removed from TEXT first, because espeak pauses ~0.2 s at each and Pipecat's
   Silero VAD (stop after 0.2 s) would then split one caller turn in two; the
   sentences meant to pause are recorded from their SSML in ``PAUSES`` with ``-m``),
2. ``sox -D tmp.wav -r 8000 -c 1 -e u-law -t raw NAME.ulaw
   silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse pad 0.1 0.2``
   (resample to 8 kHz, trim espeak's leading/trailing silence, then 100 ms of
   silence before and 200 ms after; ``-D`` turns dither off so the output is
   reproducible).

Requires ``espeak-ng`` and ``sox`` (``apt-get install -y espeak-ng sox``).
Run from anywhere: ``python tests/audio/make_fixtures.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "pipeline" / "clip_audio")]

from make_clips import missing_tools, record  # noqa: E402

from tests.audio import PAUSES, TEXTS  # noqa: E402

ULAW_8K = ["-r", "8000", "-c", "1", "-e", "u-law", "-t", "raw"]


def main() -> int:
    if missing_tools():
        print(f"{', '.join(missing_tools())} not found: apt-get install -y espeak-ng sox", file=sys.stderr)
        return 2
    for name, text in TEXTS.items():
        # espeak pauses ~0.2 s at commas: VAD would split the turn. The pauses meant to be
        # there are SSML breaks (PAUSES).
        spoken = PAUSES.get(name) or text.replace(",", "")
        out = record(spoken, HERE / f"{name}.ulaw", ULAW_8K, (0.1, 0.2), words_per_minute=150)
        size = out.stat().st_size
        print(f"{out.name}: {size} bytes, {size / 8000:.2f} s  {text!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
