"""What a run did: one line per appointment as it goes, a summary at the end, an exit code.

What it prints ends up in cron mail and scheduler logs, so a customer appears by first name and
masked number only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from config.log_privacy import mask
from config.phones import masked
from crm import db
from crm.appointments import ACTIVE_SQL
from reminders.claims import DIALLED, FAILED, NEEDS_ATTENTION
from reminders.selection import DueAppointment

# Exit codes a scheduler can act on (also in `python -m reminders --help`).
EXIT_OK = 0  # everything selected was dialled or deliberately skipped
EXIT_ATTENTION = 1  # a dial failed, a reminder needs a person, or the run could not finish
EXIT_CONFIG = 2  # bad configuration (the settings' own exit code)
EXIT_OUTSIDE_HOURS = 3  # refused: outside calling hours; run again inside them


@dataclass(frozen=True)
class Entry:
    due: DueAppointment
    verdict: str  # DIALLED, FAILED, NEEDS_ATTENTION or the reason it was skipped
    detail: str | None = None  # call SID, error, or more about the reason
    recovered: bool = False  # dialled, though only Twilio's list of calls said so

    def line(self, tz: ZoneInfo, dry_run: bool) -> str:
        due, a = self.due, self.due.appointment
        label = {DIALLED: "would dial" if dry_run else "dialled", FAILED: "FAILED",
                 NEEDS_ATTENTION: "NEEDS ATTENTION"}.get(self.verdict)
        label = label or f"{'would skip' if dry_run else 'skipped'} ({self.verdict})"
        what = ", ".join(part for part in (a.service_type, due.vehicle) if part)
        tail = f": {mask(self.detail)}" if self.detail else ""  # Twilio's errors quote the number
        return (f"{label:<36} appointment {a.id} at {a.start_time.astimezone(tz):%H:%M},"
                f" {due.first_name} {masked(due.phone)} ({what}){tail}")


@dataclass
class Summary:
    day: date
    tz: ZoneInfo
    calling_hours: str
    dry_run: bool = False
    run_id: int | None = None
    selected: int = 0
    entries: list[Entry] = field(default_factory=list)
    outside_hours: bool = False  # refused (all or the rest) because of the calling hours
    outcomes: dict[str, int] = field(default_factory=dict)

    def of(self, verdict: str) -> list[Entry]:
        return [e for e in self.entries if e.verdict == verdict]

    @property
    def dialled(self) -> list[Entry]:
        return self.of(DIALLED)

    @property
    def failed(self) -> list[Entry]:
        return self.of(FAILED)

    @property
    def needs_attention(self) -> list[Entry]:
        return self.of(NEEDS_ATTENTION)

    @property
    def recovered(self) -> list[Entry]:
        return [e for e in self.dialled if e.recovered]

    @property
    def skipped(self) -> Counter[str]:
        return Counter(e.verdict for e in self.entries
                       if e.verdict not in (DIALLED, FAILED, NEEDS_ATTENTION))

    def exit_code(self) -> int:
        if self.failed or self.needs_attention:
            return EXIT_ATTENTION
        return EXIT_OUTSIDE_HOURS if self.outside_hours else EXIT_OK

    def render(self) -> str:
        skipped = self.skipped
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(skipped.items()))
        run = " (dry run: nothing dialled or written)" if self.dry_run else f" (run {self.run_id})"
        recovered = (f"   {len(self.recovered)} found in Twilio's list of calls after an unclear answer"
                     if self.recovered else "")
        lines = [
            f"reminders for {self.day:%A %Y-%m-%d}, calling hours {self.calling_hours}{run}",
            f"  selected         {self.selected:>5}",
            f"  {'would dial' if self.dry_run else 'dialled':<16} {len(self.dialled):>5}" + recovered,
            f"  skipped          {sum(skipped.values()):>5}" + (f"   {reasons}" if reasons else ""),
            f"  failed           {len(self.failed):>5}",
            f"  needs attention  {len(self.needs_attention):>5}",
            "  so far for this day's reminded appointments: "
            + ", ".join(f"{name} {self.outcomes.get(name, 0)}" for name in OUTCOMES),
        ]
        for entry in self.failed + self.needs_attention:
            lines.append("    " + entry.line(self.tz, self.dry_run))
        if self.needs_attention:
            lines.append("  A reminder left in 'dialling' (its run died, or could not tell from Twilio's"
                         " list of calls) may or may not have been placed: check Twilio's call log,"
                         " then set it to 'dialled' (placed) or delete it (not placed) in the"
                         " reminders table.")
        lines.append(f"exit {self.exit_code()}: {self._verdict()}")
        return "\n".join(lines)

    def _verdict(self) -> str:
        code = self.exit_code()
        if code == EXIT_ATTENTION:
            return f"{len(self.failed)} failed, {len(self.needs_attention)} need a person"
        if code == EXIT_OUTSIDE_HOURS:
            return f"outside calling hours ({self.calling_hours}); run again inside them"
        return "every selected appointment was dialled or deliberately skipped"

    def as_json(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(), "selected": self.selected,
            "dialled": len(self.dialled), "skipped": dict(self.skipped),
            "recovered": [e.due.appointment.id for e in self.recovered],
            "failed": [e.due.appointment.id for e in self.failed],
            "needs_attention": [e.due.appointment.id for e in self.needs_attention],
            "outcomes": self.outcomes, "exit_code": self.exit_code(),
        }


OUTCOMES = ("confirmed", "rescheduled", "cancelled", "voicemail")

# Reminded = Twilio accepted the call. Rescheduled: the appointment no longer has the time the
# reminder announced. Voicemail: the call log says a machine answered.
_OUTCOMES = f"""
SELECT count(*) FILTER (WHERE a.status = 'confirmed') AS confirmed,
       count(*) FILTER (WHERE a.status IN {ACTIVE_SQL}
                        AND a.scheduled_at <> r.scheduled_at) AS rescheduled,
       count(*) FILTER (WHERE a.status = 'cancelled') AS cancelled,
       count(*) FILTER (WHERE l.outcome = 'voicemail') AS voicemail
FROM reminders r
JOIN appointments a ON a.id = r.appointment_id
LEFT JOIN call_logs l ON l.call_sid = r.call_sid
WHERE r.day = %s AND r.state = 'dialled'
"""


async def outcomes(day: date) -> dict[str, int]:
    async with db.connection() as conn:
        return dict(await (await conn.execute(_OUTCOMES, (day,))).fetchone())
