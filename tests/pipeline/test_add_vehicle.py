"""The add_vehicle tool: read back first, stored only once confirmed, only on the caller's own
record, and never a VIN that fails its check or one on someone else's record."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pipecat.services.llm_service import FunctionCallParams

import crm
from config.settings import get_settings
from crm.identity import CallerAccess, CallerId
from pipeline.opening import CallStart
from pipeline.session import CallSession
from pipeline.tools import CallTools

SID = "CA" + "7e" * 16
MARIA, LEE, STRANGER = "+12125550123", "+16465550149", "+16465550142"
HONDA = "1HGCM82633A004352"  # a 2003 Accord
SPOKEN = "one H G, C as in Charlie, M 8, 2 6 3, 3 A double oh, 4 3, 5 2"
READ_BACK = "1 H G, C M 8, 2 6 3, 3 A 0, 0 4 3, 5 2"


class Tools:
    """One call's tools, called as the model would, with what each answered."""

    def __init__(self, tools: CallTools) -> None:
        self.tools = tools
        self.answers: list[dict[str, Any]] = []

    async def add_vehicle(self, **arguments: Any) -> dict[str, Any]:
        async def answered(result: Any, properties: Any = None) -> None:
            self.answers.append(result)

        params = FunctionCallParams(function_name="add_vehicle", tool_call_id="call_1",
                                    arguments=arguments, llm=None, pipeline_worker=None,  # type: ignore[arg-type]
                                    context=None, result_callback=answered)  # type: ignore[arg-type]
        await self.tools.add_vehicle(params, **arguments)
        return self.answers[-1]


async def _tools(number: str | None, caller: CallerId) -> AsyncIterator[Tools]:
    await crm.open_call_log(SID, "inbound", number, None)
    start = CallStart(call_sid=SID, stream_sid="MZ" + "7e" * 16, account_sid=None, direction="inbound",
                      customer_number=number, shop_number=None, caller_id=caller)
    access = CallerAccess.of(number, caller)
    session = CallSession(start, access, await access.own_record())
    session.begin()
    yield Tools(CallTools(session, get_settings()))
    await session.finish()


@pytest.fixture
async def maria(clean_db: None) -> AsyncIterator[Tools]:
    await crm.create_customer(MARIA, "Maria", "Lopez")
    async for tools in _tools(MARIA, CallerId.ATTESTED):
        yield tools


async def _vehicles(number: str) -> list[tuple[Any, ...]]:
    record = await crm.lookup_customer(number)
    return [(v["year"], v["make"], v["model"], v["vin"], v["mileage"]) for v in record.get("vehicles", [])]


ACCORD = {"year": 2003, "make": "Honda", "model": "Accord", "vin": SPOKEN, "mileage": "180,000"}


async def test_the_vin_is_read_back_in_groups_and_stored_only_once_confirmed(maria: Tools) -> None:
    first = await maria.add_vehicle(**ACCORD)
    assert first["confirm"] is True and first["added"] is False
    assert (first["vehicle"], first["vin_read_back"], first["mileage"]) == (
        "2003 Honda Accord", READ_BACK, 180_000)
    assert "confirmed=true" in first["note"] and "vin_model_year" not in first
    assert await _vehicles(MARIA) == []  # nothing before the caller said yes

    stored = await maria.add_vehicle(**ACCORD, confirmed=True)
    assert stored["added"] is True
    assert await _vehicles(MARIA) == [(2003, "Honda", "Accord", HONDA, 180_000)]
    record = maria.tools.session.record
    assert record is not None and [v.id for v in record.vehicles] == [stored["vehicle_id"]]


async def test_confirmed_without_a_read_back_or_with_other_details_reads_back_first(maria: Tools) -> None:
    assert (await maria.add_vehicle(**ACCORD, confirmed=True))["confirm"] is True
    corrected = {**ACCORD, "mileage": 181_000}
    assert (await maria.add_vehicle(**corrected, confirmed=True))["confirm"] is True  # changed: again
    assert await _vehicles(MARIA) == []
    assert (await maria.add_vehicle(**corrected, confirmed="true"))["added"] is True
    assert await _vehicles(MARIA) == [(2003, "Honda", "Accord", HONDA, 181_000)]


@pytest.mark.parametrize("vin", ["1HGCM82643A004352", "1 H G C M 8 2 6 3 3 A oscar 0 4 3 5 2", "1HGCM8263"])
async def test_a_vin_that_does_not_check_out_is_asked_for_again_never_stored(maria: Tools, vin: str) -> None:
    for confirmed in (False, True):
        answer = await maria.add_vehicle(**{**ACCORD, "vin": vin}, confirmed=confirmed)
        assert answer["added"] is False and answer["valid"] is False
        assert "again" in answer["note"] and answer["heard"]
    assert await _vehicles(MARIA) == []


@pytest.mark.parametrize(("arguments", "asks"), [
    ({"year": 1890}, "model year"), ({"year": "soon"}, "model year"), ({"make": " "}, "make"),
    ({"mileage": -5}, "mileage"), ({"mileage": "lots"}, "mileage")])
async def test_details_that_make_no_vehicle_are_asked_for_again(maria: Tools, arguments: dict[str, Any],
                                                                asks: str) -> None:
    answer = await maria.add_vehicle(**{**ACCORD, **arguments}, confirmed=True)
    assert answer["added"] is False and asks in answer["reason"]
    assert await _vehicles(MARIA) == []


async def test_year_make_and_model_are_enough_and_a_vin_of_another_year_is_pointed_out(maria: Tools) -> None:
    civic = {"year": 2019, "make": "Honda", "model": "Civic"}
    answer = await maria.add_vehicle(**civic)
    assert answer["vehicle"] == "2019 Honda Civic"
    assert "vin_read_back" not in answer and "mileage" not in answer
    assert (await maria.add_vehicle(**civic, confirmed=True))["added"] is True
    mismatch = await maria.add_vehicle(**{**civic, "vin": HONDA})
    assert mismatch["vin_model_year"] == 2003 and "year" in mismatch["note"]
    assert await _vehicles(MARIA) == [(2019, "Honda", "Civic", None, None)]


async def test_a_vin_on_another_customers_record_is_neither_moved_nor_named(maria: Tools) -> None:
    lee = (await crm.create_customer(LEE, "Lee", "O'Brien"))["customer"]["id"]
    await crm.add_vehicle(lee, 2003, "Honda", "Accord", HONDA, 58_213)
    await maria.add_vehicle(**ACCORD)
    answer = await maria.add_vehicle(**ACCORD, confirmed=True)
    assert answer["added"] is False and set(answer) == {"added", "reason"}
    for secret in ("Lee", "O'Brien", "58213", "on file", "another", "customer"):
        assert secret not in json.dumps(answer), secret
    assert await _vehicles(MARIA) == []
    assert await _vehicles(LEE) == [(2003, "Honda", "Accord", HONDA, 58_213)]


async def test_the_callers_own_vin_twice_is_the_vehicle_on_record(maria: Tools) -> None:
    await maria.add_vehicle(**ACCORD)
    first = await maria.add_vehicle(**ACCORD, confirmed=True)
    await maria.add_vehicle(**ACCORD)
    again = await maria.add_vehicle(**ACCORD, confirmed=True)
    assert again == {"added": False, "already_on_record": True, "vehicle_id": first["vehicle_id"]}


async def test_an_unverified_caller_id_adds_but_learns_nothing_of_the_vins_on_record(clean_db: None) -> None:
    maria = (await crm.create_customer(MARIA, "Maria", "Lopez"))["customer"]["id"]
    await crm.add_vehicle(maria, 2003, "Honda", "Accord", HONDA)
    async for tools in _tools(MARIA, CallerId.UNATTESTED):
        await tools.add_vehicle(**ACCORD)
        answer = await tools.add_vehicle(**ACCORD, confirmed=True)
        assert answer["added"] is False and "vehicle_id" not in answer  # not "it is yours"
        civic = {"year": 2019, "make": "Honda", "model": "Civic"}
        await tools.add_vehicle(**civic)
        assert (await tools.add_vehicle(**civic, confirmed=True))["added"] is True
    assert [v[2] for v in await _vehicles(MARIA)] == ["Accord", "Civic"]


async def test_a_new_caller_gives_their_name_and_becomes_a_customer_with_the_car(clean_db: None) -> None:
    async for tools in _tools(STRANGER, CallerId.ATTESTED):
        await tools.add_vehicle(**ACCORD)
        nameless = await tools.add_vehicle(**ACCORD, confirmed=True)
        assert nameless["added"] is False and "name" in nameless["reason"]
        # The caller confirmed the car already: only the name was missing.
        named = await tools.add_vehicle(**ACCORD, confirmed=True, customer_name="Sam Rivera")
        assert named["added"] is True
    record = await crm.lookup_customer(STRANGER)
    assert (record["customer"]["first_name"], record["customer"]["last_name"]) == ("Sam", "Rivera")
    assert await _vehicles(STRANGER) == [(2003, "Honda", "Accord", HONDA, 180_000)]
