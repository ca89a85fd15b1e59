"""Runs the benchmarks and writes bench/report/: README.md, PNG plots and figures.json.

    python -m bench [--quick]

Each stage is one of the bench scripts run as its own process; its figures are parsed out of
what it prints (bench/report_figures.py), so a stage that fails shows as failed in the report.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from bench import plots, report_figures, report_writer

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "bench" / "report"
FULL = {"lookup": ["lookup_bench.py"], "calendar": ["calendar_bench.py"],
        "offline_speech": ["offline_speech_bench.py"],
        "calls": ["call_bench.py", "--calls", "1,10,25,50,100,150,200", "--until-broken",
                  "--bots", "ours,bare"]}
QUICK = {"lookup": ["lookup_bench.py", "--lookups", "200", "--runs", "2"],
         "calendar": ["calendar_bench.py", "--checks", "50", "--bookings", "20", "--runs", "2"],
         "calls": ["call_bench.py", "--calls", "1,5", "--turns", "2"]}


async def _customers() -> int:
    from crm import db  # the database configured from the environment, as the scripts use it

    try:
        async with db.connection() as conn:
            return (await (await conn.execute("SELECT count(*) AS n FROM customers")).fetchone())["n"]
    finally:
        await db.close()


def _seed_if_empty() -> None:
    """A small demo set for --quick, only into an empty database (never over someone's data)."""
    subprocess.run([sys.executable, "-m", "crm", "init"], cwd=ROOT, check=True, capture_output=True)
    if asyncio.run(_customers()) == 0:
        subprocess.run([sys.executable, "-m", "crm", "seed", "--customers", "200", "--vehicles", "300",
                        "--appointments", "150"], cwd=ROOT, check=True, capture_output=True)


def _run(name: str, command: list[str]) -> dict:
    start = time.monotonic()
    done = subprocess.run([sys.executable, str(ROOT / "bench" / command[0]), *command[1:]], cwd=ROOT,
                          capture_output=True, text=True)
    stage = {"seconds": time.monotonic() - start, "stdout": done.stdout}
    parsed = report_figures.PARSERS[name](done.stdout) if done.returncode == 0 else {}
    error = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
    return {**stage, "ok": bool(parsed), "figures": parsed,
            "error": "" if parsed else (error if done.returncode else "no figures in its output")}


def _machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    return {"cpu": cpu, "cores": os.cpu_count(),
            "ram_gib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30}


def _load() -> str:
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


def main(quick: bool) -> None:
    if quick:
        _seed_if_empty()
    machine = {**_machine(), "load_before": _load()}
    stages = {}
    for name, command in (bar := tqdm((QUICK if quick else FULL).items(), unit="stage")):
        bar.set_description(name)
        stages[name] = _run(name, command)
    machine["load_after"] = _load()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip() or "unknown"
    report = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "quick": quick,
              "commit": commit, "machine": machine, "stages": stages}
    REPORT.mkdir(parents=True, exist_ok=True)
    saved = REPORT / "figures.json"
    previous = json.loads(saved.read_text()) if saved.exists() else {}
    written = plots.write(REPORT, stages.get("calls", {}).get("figures", {}))
    (REPORT / "README.md").write_text(report_writer.markdown(report, previous, written))
    saved.write_text(json.dumps(report, indent=1))
    print(f"wrote {REPORT / 'README.md'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small runs, under 3 minutes")
    main(parser.parse_args().quick)
