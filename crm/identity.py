"""Who is on the line, and which customer records a call may read and change.

The caller is who the caller ID says, for their own record only, and only as far as the
carrier vouches for that number. Anyone else's record stays closed unless the caller proves
they belong to it: its last name plus one more fact (a vehicle's make, or the last four
characters of its VIN). Even then it is read without email, VIN or mileage. A caller ID the
carrier did not attest (STIR/SHAKEN) is treated like a claim: its record is readable in the
same reduced form, without the last name the proof asks for, and nothing on it is moved or
cancelled until the caller proves it. The language model receives only what this module
returns, so no prompt, however clever, can read out what it never had.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from config.phones import e164
from crm.customers import CustomerRecord, customer_record, lookup_customer
from crm.vehicles import decode_vin, get_vehicle_info

MAX_FAILED_PROOFS = 3  # per call: enough for a misheard name, too few to guess with

# Common spoken names of a make, as the make is stored.
_MAKE_ALIASES = {"chevy": "chevrolet", "vw": "volkswagen", "mercedes": "mercedesbenz",
                 "benz": "mercedesbenz", "caddy": "cadillac"}


class CallerId(StrEnum):
    """How far the number a call came from can be believed."""

    ATTESTED = "attested"  # the carrier vouches for it (STIR/SHAKEN A)
    DIALLED = "dialled"  # we placed the call to that number
    UNATTESTED = "unattested"  # a number the carrier did not vouch for
    WITHHELD = "withheld"  # no usable number

    @property
    def trusted(self) -> bool:
        return self in (CallerId.ATTESTED, CallerId.DIALLED)


def _letters(text: Any) -> str:
    """Lower-case letters and digits only, accents dropped: how spoken names are compared."""
    decomposed = unicodedata.normalize("NFKD", str(text or ""))
    return re.sub(r"[^a-z0-9]", "", decomposed.encode("ascii", "ignore").decode().lower())


@dataclass(frozen=True)
class Proof:
    """What a caller said to show they belong to a record."""

    last_name: str | None = None
    vehicle_make: str | None = None
    vin_last4: str | None = None

    def given(self) -> bool:
        return bool(self.last_name or self.vehicle_make or self.vin_last4)

    def fits(self, record: CustomerRecord) -> bool:
        """The last name on file, plus the make or the VIN's last four of one of its vehicles."""
        last_name = _letters(record.customer.last_name)
        if not last_name or _letters(self.last_name) != last_name:
            return False
        make = _letters(self.vehicle_make)
        make = _MAKE_ALIASES.get(make, make)
        vin_end = _letters(self.vin_last4).upper()
        return any((make and _letters(vehicle.make) == make)
                   or (len(vin_end) == 4 and (vehicle.vin or "").endswith(vin_end))
                   for vehicle in record.vehicles)


# What of a record a caller may not hear: not proven to own it (email, VINs, mileage), and,
# while the caller ID of their own still has to be proven, the last name the proof asks for.
REDUCED = frozenset({"email", "vin", "mileage"})
UNPROVEN = REDUCED | {"last_name"}

NOT_YOURS = ("Only the caller's own record can be read. For another customer's record, ask the"
             " caller for the last name on it and the make of one of its vehicles (or the last four"
             " characters of its VIN), and pass them to lookup_customer.")
PROVE_FIRST = ("The caller ID is not verified, so before moving or cancelling ask the caller for the"
               " last name on the record and the make of one of its vehicles (or the last four"
               " characters of its VIN), and pass them to lookup_customer with the caller's number.")
TOO_MANY = ("Too many wrong answers on this call: do not try again; offer to transfer the caller to a"
            " service advisor.")
NO_MATCH = "Those details do not match a record for that number."
NOT_ON_RECORD = "That vehicle is not on the caller's record."


@dataclass
class CallerAccess:
    """One call's view of the CRM: the caller's own record and the records proven on the call.

    Records are kept as phone numbers and looked up afresh when used (the lookup is cached),
    so a booking or a cancellation shows at once.
    """

    number: str | None  # the caller's E.164 number, None when withheld
    caller_id: CallerId
    proven: set[str] = field(default_factory=set)  # numbers of records the caller proved
    failed_proofs: int = 0

    @classmethod
    def of(cls, number: str | None, caller: CallerId, region: str = "US") -> CallerAccess:
        try:
            if caller is not CallerId.WITHHELD and number:
                return cls(e164(number, region), caller)
        except ValueError:
            pass
        return cls(None, CallerId.WITHHELD)

    # --- who may do what -------------------------------------------------------------------

    def may_change(self, phone: str) -> bool:
        """Whether the call may move or cancel appointments of the record of `phone`."""
        return (phone == self.number and self.caller_id.trusted) or phone in self.proven

    def hidden(self, phone: str) -> frozenset[str] | None:
        """What of the record of `phone` the call may not see; None: the whole record."""
        if phone == self.number:
            return frozenset() if self.may_change(phone) else UNPROVEN
        return REDUCED if phone in self.proven else None

    def view(self, record: CustomerRecord) -> dict[str, Any]:
        """`record` as JSON, as far as this call may see it."""
        hidden = self.hidden(record.customer.phone)
        if hidden is None:
            return {"found": False, "phone": record.customer.phone}
        return record.as_json(hide=hidden)

    # --- reading ---------------------------------------------------------------------------

    async def own_record(self) -> CustomerRecord | None:
        """The caller's own record (see `view` for what of it the call may see)."""
        return await customer_record(self.number) if self.number else None

    async def lookup(self, phone: str, proof: Proof = Proof()) -> dict[str, Any]:
        """`lookup_customer` for this call: the caller's own record, or one they prove."""
        answer = await lookup_customer(phone)
        number = answer["customer"]["phone"] if answer["found"] else answer.get("phone")
        if not isinstance(number, str) or not number.startswith("+"):
            return answer  # not a phone number: nothing was found, and the reason says why
        record = CustomerRecord.from_json(answer) if answer["found"] else None
        if proof.given() and not self.may_change(number):
            return self._prove(number, record, proof)
        if record is not None and self.hidden(number) is not None:
            return self.view(record)
        if number == self.number:
            return answer  # the caller's own number, not on file
        return {"found": False, "phone": number, "reason": NOT_YOURS}

    def _prove(self, number: str, record: CustomerRecord | None, proof: Proof) -> dict[str, Any]:
        if self.failed_proofs >= MAX_FAILED_PROOFS:
            return {"found": False, "phone": number, "reason": TOO_MANY}
        if record is not None and proof.fits(record):
            self.proven.add(number)
            return {**self.view(record), "verified": True}
        self.failed_proofs += 1
        # An unknown number and a wrong answer get the same words: neither says whether it exists.
        return {"found": False, "phone": number, "verified": False, "reason": NO_MATCH}

    async def vehicle_info(self, vin: str | None = None, vehicle_id: int | None = None) -> dict[str, Any]:
        """`get_vehicle_info` for this call: a vehicle of a record it may see, or a VIN's facts
        alone (nobody's history, and not whether it is on file)."""
        answer = await get_vehicle_info(vin=vin, vehicle_id=vehicle_id)
        record = await self._record_of(answer["vehicle"]["customer_id"]) if answer.get("found") else None
        if record is None:
            if vin is None:
                return {"found": False, "reason": NOT_ON_RECORD}
            return {**decode_vin(vin), "found": False}
        hidden = self.hidden(record.customer.phone) or frozenset()
        answer = {name: value for name, value in answer.items() if name not in hidden}
        answer["vehicle"] = {name: value for name, value in answer["vehicle"].items() if name not in hidden}
        return answer

    async def _records(self) -> list[CustomerRecord]:
        """The records this call may see at all, in full or reduced."""
        numbers = ([self.number] if self.number else []) + sorted(self.proven - {self.number})
        records = [await customer_record(number) for number in numbers]
        return [record for record in records if record is not None]

    async def _record_of(self, customer_id: int) -> CustomerRecord | None:
        return next((r for r in await self._records() if r.customer.id == customer_id), None)

    # --- changing --------------------------------------------------------------------------

    async def changeable(self, appointment_id: int) -> str | None:
        """None when the call may change upcoming appointment `appointment_id`; else the
        reason to give."""
        for record in await self._records():
            if record.upcoming_visit(appointment_id):
                return None if self.may_change(record.customer.phone) else PROVE_FIRST
        return "I can't find that appointment among the caller's upcoming ones."

    async def owner_of_vehicle(self, vehicle_id: int) -> CustomerRecord | None:
        """The record a vehicle is on, if it is one the call may see (and so book for)."""
        return next((r for r in await self._records() if r.vehicle(vehicle_id) is not None), None)

    def adopt(self, number: str) -> None:
        """A record this call created (a new customer) is the caller's to change."""
        self.proven.add(number)
