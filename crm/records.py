"""A customer's record as the application reads it: the customer, their vehicles and upcoming
appointments. It travels as JSON (the cache, the tools, the contract's `lookup_customer`);
in code it is typed."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from crm.appointments import Appointment


def vehicle_label(year: int | None, make: str | None, model: str | None) -> str | None:
    """How a vehicle is named to people ("2019 Honda Civic"); None when nothing is known of it."""
    return " ".join(str(part) for part in (year, make, model) if part) or None


@dataclass(frozen=True)
class Customer:
    id: int
    first_name: str
    last_name: str
    phone: str  # E.164
    email: str | None


@dataclass(frozen=True)
class Vehicle:
    id: int
    year: int
    make: str
    model: str
    vin: str
    mileage: int | None

    @property
    def label(self) -> str:
        return vehicle_label(self.year, self.make, self.model) or ""


@dataclass(frozen=True)
class CustomerRecord:
    customer: Customer
    vehicles: tuple[Vehicle, ...]
    upcoming: tuple[Appointment, ...]  # the active ones still to come, in shop time, earliest first

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CustomerRecord:
        """From `as_json()`'s shape (the lookup's SQL builds the same)."""
        customer = Customer(**data["customer"])
        return cls(
            customer,
            tuple(Vehicle(**vehicle) for vehicle in data["vehicles"]),
            tuple(Appointment(**{**visit, "customer_id": customer.id,
                                 "start_time": datetime.fromisoformat(visit["start_time"])})
                  for visit in data["upcoming_appointments"]),
        )

    def as_json(self, hide: Collection[str] = ()) -> dict[str, Any]:
        """`lookup_customer`'s answer: `found`, `customer`, `vehicles`, `upcoming_appointments`,
        without the customer and vehicle fields named in `hide`."""
        def shown(part: Any) -> dict[str, Any]:
            return {name: value for name, value in asdict(part).items() if name not in hide}

        return {
            "found": True,
            "customer": shown(self.customer),
            "vehicles": [shown(vehicle) for vehicle in self.vehicles],
            "upcoming_appointments": [_visit(appointment) for appointment in self.upcoming],
        }

    def vehicle(self, vehicle_id: int | None) -> Vehicle | None:
        """That vehicle, or with no id the first one on file."""
        if vehicle_id is None:
            return self.vehicles[0] if self.vehicles else None
        return next((v for v in self.vehicles if v.id == vehicle_id), None)

    def upcoming_visit(self, appointment_id: int) -> Appointment | None:
        return next((visit for visit in self.upcoming if visit.id == appointment_id), None)


def _visit(appointment: Appointment) -> dict[str, Any]:
    """An upcoming appointment in the record's JSON: the customer's id is the record's own."""
    fields = {name: value for name, value in asdict(appointment).items() if name != "customer_id"}
    return {**fields, "start_time": appointment.start_time.isoformat()}
