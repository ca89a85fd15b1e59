"""A vehicle a caller adds by voice: its details checked and read back before it is stored.

The tool (`CallTools.add_vehicle`) answers the read-back first and stores only what the caller
then confirmed. A VIN that fails its check (crm/vin.py) is asked for again, never stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crm import vin as vins
from crm.customers import vehicle_label
from crm.vehicles import decode_vin

Answer = dict[str, Any]

OLDEST_YEAR = 1950  # as the vehicles table allows
MAX_MILEAGE = 2_000_000

READ_BACK = ("Read the vehicle back, then the VIN exactly in these groups, and the mileage; ask if it"
             " is right. Once the caller says yes, call add_vehicle again with the same details and"
             " confirmed=true. If they correct something, call it again with the correction.")
VIN_AGAIN = ("Nothing was stored. Tell the caller the VIN does not check out and ask them to say it"
             " again, slowly, one character at a time.")


@dataclass(frozen=True)
class NewVehicle:
    year: int
    make: str
    model: str
    vin: str | None  # the 17 characters, checked
    mileage: int | None

    @classmethod
    def of(cls, year: Any, make: Any, model: Any, vin: Any, mileage: Any) -> NewVehicle | Answer:
        """The vehicle the tool's arguments describe, or what to ask the caller again."""
        latest = datetime.now().year + 1  # next year's models are on sale
        said_year = _whole(year)
        if said_year is None or not OLDEST_YEAR <= said_year <= latest:
            return {"added": False, "reason": f"Ask for the model year again ({OLDEST_YEAR}-{latest})."}
        make, model = str(make or "").strip(), str(model or "").strip()
        if not make or not model:
            return {"added": False, "reason": "Ask for the make and the model."}
        miles = _whole(mileage)
        if mileage not in (None, "") and (miles is None or not 0 <= miles <= MAX_MILEAGE):
            return {"added": False, "reason": "Ask for the mileage again, or leave it out."}
        number = None
        if vin not in (None, ""):
            checked = vins.read(str(vin))
            if not checked.valid:
                return {"added": False, "valid": False, "heard": checked.read_back,
                        "reason": checked.reason, "note": VIN_AGAIN}
            number = checked.vin
        return cls(said_year, make, model, number, miles)

    def read_back(self) -> Answer:
        """What the agent reads back before storing."""
        answer: Answer = {"added": False, "confirm": True,
                          "vehicle": vehicle_label(self.year, self.make, self.model)}
        if self.vin:
            answer["vin_read_back"] = vins.read_back(self.vin)
            vin_year = decode_vin(self.vin).get("model_year")
            if vin_year and vin_year != self.year:
                answer["vin_model_year"] = vin_year  # the caller's year or the VIN is off
        if self.mileage is not None:
            answer["mileage"] = self.mileage
        answer["note"] = READ_BACK + (" The VIN is of another model year: check the year with the caller."
                                      if "vin_model_year" in answer else "")
        return answer


def _whole(value: Any) -> int | None:
    """A whole number as the model may send it: 41000, "41000", "41,000"; None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    try:
        return int(str(value).replace(",", "").strip())
    except (TypeError, ValueError):
        return None
