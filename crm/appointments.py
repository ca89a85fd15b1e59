"""What every package means by an appointment: its statuses, which of them are active, and the
appointment itself.

The schema spells the same statuses in the `appointments.status` check, and the active ones in
the double-booking constraint and the `appointments_day` index (`crm/migrations/001_schema.sql`),
and the active ones again in the constraint that keeps one customer's appointments from
overlapping (`005_one_customer_at_a_time.sql`).
Migrations are history and keep their own copy: changing a list here needs a new migration too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

SCHEDULED = "scheduled"
CONFIRMED = "confirmed"
CANCELLED = "cancelled"
COMPLETED = "completed"
NO_SHOW = "no_show"

ACTIVE = (SCHEDULED, CONFIRMED)  # still to happen: they hold their bay

# The active list as SQL (`status IN ('scheduled', 'confirmed')`) for queries to be built from,
# rather than passed as a parameter: the planner can then match the partial indexes, whose
# predicates spell the same list, in every plan.
ACTIVE_SQL = "(" + ", ".join(f"'{status}'" for status in ACTIVE) + ")"

# `Appointment`'s fields from the appointments table, for a query that calls it `a`.
COLUMNS = ("a.id, a.customer_id, a.vehicle_id, a.service_type, a.scheduled_at AS start_time,"
           " a.duration_minutes, a.status")


@dataclass(frozen=True)
class Appointment:
    """One row of the appointments table, in the names the agent's tools speak."""

    id: int
    customer_id: int
    vehicle_id: int | None
    service_type: str
    start_time: datetime  # aware; each package keeps it in the time zone it works in
    duration_minutes: int
    status: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Appointment:
        """From a row selecting `COLUMNS` (and possibly more)."""
        return cls(**{field.name: row[field.name] for field in fields(cls)})

    @property
    def end_time(self) -> datetime:
        return self.start_time + timedelta(minutes=self.duration_minutes)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE
