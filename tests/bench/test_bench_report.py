"""The benchmark report: parsing the scripts' real output, the Markdown and the plots."""

from __future__ import annotations

from bench import plots, report_figures, report_writer

# Lines captured from a real `python -m bench --quick` run.
LOOKUP = """machine: x86_64, 2 cores, load average 0.83; 500 customers
run 1: uncached p50 ms 3.848, uncached p99 ms 18.252, cached p50 ms 0.361, cached p99 ms 3.604, \
uncached/s at 50 201, cached/s at 50 1537
median of runs: uncached p50 ms 4.721, uncached p99 ms 23.265, cached p50 ms 0.343, cached p99 ms 2.045, \
uncached/s at 50 325, cached/s at 50 1995
"""
CALENDAR = """run 1: check p50 1.85, check p99 7.75, book p50 15.67, book p99 32.65, bookings/s 84
median of 2 runs (ms; bookings/s with 50 tasks): check p50 2.58, check p99 10.02, book p50 20.66, \
book p99 43.84, bookings/s 111.89, attempts/s 111.89, refused alone 0.00, refused racing 0.00, deleted 40.00
load average after: 1.00 0.79 0.45
"""
CALLS = """ours: idle RSS 304 MiB
ours   5 calls: reply p50 1483 p95 1720 ms (plain p50 1506 p95 1720 ms, short p50 1460 p95 1591 ms, \
paused -); cut in 0/0 paused turns; barge-in p50 88 p95 126 ms (clear p50 328 p95 337 ms); backchannels \
taken for interruptions 0/5; gaps in the agent's audio 8; greeting p50 398 p95 592 ms; after decision \
p50 1322 p95 1623 ms; failed 0; peak RSS 344 MiB (7.9 MiB per call); CPU launcher 0.52 cores, \
callers+fakes 0.16 cores
ours   5 calls: median stages from the end of speech: turn_end 402, stt_final 310, first_token 441, \
first_audio 1322
ours: budget broken at 5 calls: reply p95 412 ms over the first level's
ours / bare at 5 calls: reply p50 0.69x, reply p95 0.48x, barge-in p50 0.32x, barge-in p95 0.38x
"""
# offline_speech_bench.py's summary lines, in the format its summary() prints.
SPEECH = """TTS text to first audio: median 0.123 s, p95 0.200 s
STT end of segment to transcription: median 0.300 s, p95 0.450 s
WER 3.4% (1 of 29 words, case and punctuation ignored)
"""


def test_parsers_read_each_scripts_output() -> None:
    assert report_figures.lookup(LOOKUP)["cached p99 ms"] == 2.045
    assert report_figures.lookup(LOOKUP)["uncached/s at 50"] == 325
    assert report_figures.calendar(CALENDAR)["book p99"] == 43.84
    assert report_figures.calls(CALLS) == {
        "ours 5 calls reply p50 ms": 1483, "ours 5 calls reply p95 ms": 1720,
        "ours 5 calls peak RSS MiB": 344, "ours 5 calls CPU cores": 0.52,
        "ours 5 calls barge-in p95 ms": 126,
        "ours 5 calls stage turn_end ms": 402, "ours 5 calls stage stt_final ms": 310,
        "ours 5 calls stage first_token ms": 441, "ours 5 calls stage first_audio ms": 1322,
        "ours budget broken at calls": 5,
        "ours/bare 5 calls reply p50 x": 0.69, "ours/bare 5 calls reply p95 x": 0.48,
        "ours/bare 5 calls barge-in p50 x": 0.32, "ours/bare 5 calls barge-in p95 x": 0.38}
    speech = report_figures.offline_speech(SPEECH)
    assert speech["STT end of segment to transcription p95"] == 0.45 and speech["WER %"] == 3.4
    assert report_figures.lookup("seed the database first") == {}


def _report(reply_p95: float) -> dict:
    calls = {f"ours {n} calls {key}": value * n for n in (1, 5)
             for key, value in (("reply p95 ms", reply_p95), ("CPU cores", 0.1), ("peak RSS MiB", 300),
                                ("stage turn_end ms", 400), ("stage first_audio ms", 900))}
    return {"date": "2026-12-02 21:00 UTC", "quick": True, "commit": "abc1234",
            "machine": {"cpu": "Test CPU", "cores": 2, "ram_gib": 7.5, "load_before": "0.10 0.20 0.30",
                        "load_after": "0.40 0.50 0.60"},
            "stages": {"lookup": {"ok": True, "seconds": 3.0, "figures": {"cached p99 ms": 1.5}},
                       "calendar": {"ok": False, "seconds": 1.0, "figures": {}, "error": "boom"},
                       "calls": {"ok": True, "seconds": 60.0, "figures": calls}}}


def test_writer_and_plots(tmp_path) -> None:
    report = _report(600)
    written = plots.write(tmp_path, report["stages"]["calls"]["figures"])
    assert written == ["waterfall.png", "reply_and_cpu.png", "memory.png"]
    for name in written:
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    text = report_writer.markdown(report, _report(500), written)
    assert "Test CPU, 2 cores, 7.5 GiB RAM" in text and "0.10 0.20 0.30 / 0.40 0.50 0.60" in text
    assert "| Customer lookup (cached) < 2 ms | cached p99 ms: 1.5 | yes |" in text
    assert "| Calendar freebusy < 1 s | not measured | - |" in text
    assert "**Failed** after 1 s: `boom`" in text
    assert "| ours 1 calls reply p95 ms | 600 | +100 (+20%) |" in text
    assert all(f"![{name}]({name})" in text for name in written)
