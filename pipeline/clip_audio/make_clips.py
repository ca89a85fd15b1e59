"""Record the clips (``*.wav``) in this folder from the lines in config/lines.py.

Why: when text-to-speech fails, the agent still says a few fixed lines (the greeting,
"one moment" while its words are said again, its apology before a transfer) from
recordings made in advance, since nothing may be fetched or synthesised during a call
and the cloud voice is the thing that failed. This script documents exactly how the
committed files were made; the call only reads them (:func:`pipeline.clips.clip`).
Rerun it after rewording one of those lines (``pipeline.clips.CLIP_LINES``): it also
writes ``texts.json``, the text each file was made from, which a test compares with the
lines.

Each clip is 8 kHz mono 16-bit PCM WAV (the pipeline's output format), made like this:

1. ``espeak-ng -v en-us -s 160 -w tmp.wav TEXT`` (22.05 kHz 16-bit speech),
2. ``sox -D tmp.wav -r 8000 -c 1 -b 16 -e signed-integer NAME.wav
   silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse pad 0.05 0.1``
   (resample to 8 kHz, trim espeak's leading and trailing silence, pad a little;
   ``-D`` turns dither off so the output is reproducible).

Requires ``espeak-ng`` and ``sox`` (``apt-get install -y espeak-ng sox``).
Run from anywhere: ``python pipeline/clip_audio/make_clips.py``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from pipeline.clips import CLIP_LINES  # noqa: E402

VOICE = "en-us"
TRIM = ["silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%", "reverse"]
WAV_8K = ["-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"]


def record(text: str, out: Path, sox_format: list[str], pad: tuple[float, float], *,
           words_per_minute: int = 160) -> Path:
    """Synthesise `text` with espeak-ng and convert it with sox (`sox_format`: the output
    options), trimmed of espeak's silences and padded with `pad` seconds before and after.
    `text` may hold SSML breaks (`<break time="400ms"/>`): pauses inside one sentence.
    tests/audio/make_fixtures.py records the callers' speech the same way."""
    markup = ["-m"] if "<" in text else []
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "espeak.wav"
        subprocess.run(["espeak-ng", *markup, "-v", VOICE, "-s", str(words_per_minute), "-w", str(wav),
                        text], check=True)
        subprocess.run(["sox", "-D", str(wav), *sox_format, str(out), *TRIM,
                        "pad", str(pad[0]), str(pad[1])], check=True)
    return out


def missing_tools() -> list[str]:
    return [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]


def main() -> int:
    if missing_tools():
        print(f"{', '.join(missing_tools())} not found: apt-get install -y espeak-ng sox", file=sys.stderr)
        return 2
    for name, text in CLIP_LINES.items():
        out = record(text, HERE / f"{name}.wav", WAV_8K, (0.05, 0.1))
        print(f"{out.name}: {out.stat().st_size} bytes  {text!r}")
    (HERE / "texts.json").write_text(json.dumps(CLIP_LINES, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
