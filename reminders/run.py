"""One reminder run: select the day's appointments, then for each, in order, the safety checks
(allowlist, calling hours, not yet passed), the claim, and the call.

The clock is passed in, so tests pin the time; `report` receives one line per appointment as
the run goes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

from config.phones import allowlisted
from reminders import claims, dialler, selection
from reminders.claims import (
    APPOINTMENT_PASSED,
    DIALLED,
    LIVE_STATES,
    NOT_ALLOWLISTED,
    NUMBER_ALREADY_CALLED,
    OURS,
    OUTSIDE_CALLING_HOURS,
)
from reminders.dialler import Dialler
from reminders.policy import ReminderConfig
from reminders.selection import DueAppointment
from reminders.summary import Entry, Summary, outcomes

Clock = Callable[[], datetime]
Report = Callable[[str], None]


def system_clock() -> datetime:
    return datetime.now(UTC)


def _safety(config: ReminderConfig, due: DueAppointment, now: datetime) -> str | None:
    """Why the appointment must not be dialled whatever the database says, or None."""
    if not allowlisted(due.phone, config.allowlist):
        return NOT_ALLOWLISTED
    if due.appointment.start_time <= now:
        return APPOINTMENT_PASSED
    return None


async def run(
    config: ReminderConfig,
    calls: Dialler | None,
    *,
    day: date | None = None,
    dry_run: bool = False,
    clock: Clock = system_clock,
    report: Report | None = None,
) -> Summary:
    """Remind the customers of `day` (default: tomorrow, shop time); `calls` may be None for a
    dry run, which reads the database but writes nothing and dials nobody."""
    now = clock()
    day = day or selection.target_day(now, config.tz)
    appointments = await selection.select(day, config.tz)
    summary = Summary(day, config.tz, config.describe_hours(), dry_run=dry_run,
                      selected=len(appointments))
    say = report or (lambda _line: None)

    def note(entry: Entry) -> None:
        summary.entries.append(entry)
        say(entry.line(config.tz, dry_run))

    if not config.allowlist:
        say("REMINDER_ALLOWLIST is empty: nobody will be called")
    if not config.in_calling_hours(now):
        summary.outside_hours = True
        say(f"outside calling hours ({config.describe_hours()}): "
            + ("a live run now would dial nobody" if dry_run else "dialling nobody"))
    if dry_run or summary.outside_hours:
        if dry_run:
            await _preview(config, appointments, day, now, note)
        else:  # refused before any claim, so a later run inside the hours can still call
            for due in appointments:
                note(Entry(due, OUTSIDE_CALLING_HOURS))
        summary.outcomes = await outcomes(day)
        return summary
    assert calls is not None, "a live run needs something to place calls"
    async with claims.run_record(day) as run_id:
        summary.run_id = run_id
        await _remind(config, calls, appointments, day, run_id, clock, summary, note)
        summary.outcomes = await outcomes(day)
        await claims.finish_run(run_id, summary.as_json())
    return summary


async def _remind(
    config: ReminderConfig,
    calls: Dialler,
    appointments: list[DueAppointment],
    day: date,
    run_id: int,
    clock: Clock,
    summary: Summary,
    note: Callable[[Entry], None],
) -> None:
    for index, due in enumerate(appointments):
        now = clock()
        if not config.in_calling_hours(now):  # the window closed during the run
            summary.outside_hours = True
            for rest in appointments[index:]:
                note(Entry(rest, OUTSIDE_CALLING_HOURS))
            return
        unsafe = _safety(config, due, now)
        if unsafe is not None:
            if unsafe == NOT_ALLOWLISTED:
                await claims.record_skip(due, day, run_id, unsafe)
            note(Entry(due, unsafe))
            continue
        claim = await claims.claim(due, day, run_id)
        if claim.verdict != OURS:
            note(Entry(due, claim.verdict, claim.detail))
            continue
        assert claim.reminder_id is not None
        result = await dialler.dial(config, calls, due, claim.reminder_id, run_id)
        note(Entry(due, result.verdict, result.detail, result.recovered))


async def _preview(
    config: ReminderConfig,
    appointments: list[DueAppointment],
    day: date,
    now: datetime,
    note: Callable[[Entry], None],
) -> None:
    """What a live run would do now, from what the database holds; changes nothing."""
    existing = await claims.day_reminders(day)
    holder = {r.to_number: r.appointment_id for r in existing.values() if r.state in LIVE_STATES}
    for due in appointments:
        appointment_id = due.appointment.id
        verdict, detail = _safety(config, due, now), None
        found = existing.get(appointment_id)
        if verdict is None and found is not None:
            verdict = claims.verdict(found.state, mine=False, owner_alive=found.owner_alive)
            if verdict is not None:
                detail = claims.explain(verdict, found.run_id, found.call_sid, found.reason)
        if verdict is None and holder.get(due.phone, appointment_id) != appointment_id:
            verdict = NUMBER_ALREADY_CALLED
            detail = f"called for appointment {holder[due.phone]}"
        if verdict is None:
            verdict, detail = DIALLED, None
            holder[due.phone] = appointment_id
        note(Entry(due, verdict, detail))
