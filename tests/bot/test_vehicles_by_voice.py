"""A caller adds a car by voice over the wire: a misheard VIN is asked for again, the right one is
read back in groups, and it is stored only after the caller's yes."""

from __future__ import annotations

import crm
from telephony.webhooks import ATTESTED_VERSTAT
from tests.audio import load
from tests.bot.conftest import Launcher
from tests.bot.test_calls import MARIA, _tool_result, closed_log
from tests.fakes.openai import Call, ChatRequest, Reply, ToolCalls

HONDA = "1HGCM82633A004352"
MISHEARD = "one H G C as in Charlie M eight two six four three A zero zero four three five two"
SPELLED = "1 H G, C M 8, 2 6 3, 3 A double oh, 4 3, 5 2"
ACCORD = {"year": 2003, "make": "Honda", "model": "Accord"}


async def test_a_caller_spells_a_vin_hears_it_back_and_the_car_is_on_their_record(launcher: Launcher) -> None:
    maria = (await crm.create_customer(MARIA, "Maria", "Lopez"))["customer"]["id"]
    said = [f"I have a new car, a 2003 Honda Accord, the VIN is {MISHEARD}.",
            f"Sorry. It's {SPELLED}, and it has about 180,000 miles.",
            "Yes, that's right."]
    launcher.deepgram.add_script(*said)

    def misheard(request: ChatRequest) -> Reply:
        answer = _tool_result(request)
        assert (answer["added"], answer["valid"]) == (False, False) and "check digit" in answer["reason"]
        return Reply("Sorry, that VIN doesn't check out. Could you spell it again?")

    def added(request: ChatRequest) -> ToolCalls:
        done = _tool_result(request)["added"]
        return ToolCalls([Call("end_call", {"reason": "car added"})],
                         text="It's on your record." if done else "Sorry.")

    def read_back(request: ChatRequest) -> Reply:
        answer = _tool_result(request)
        return Reply(f"That's a {answer['vehicle']}, VIN {answer['vin_read_back']},"
                     f" with {answer['mileage']} miles. Is that right?")

    add = {**ACCORD, "vin": SPELLED, "mileage": 180000}
    launcher.policy.add(ToolCalls([Call("add_vehicle", {**ACCORD, "vin": MISHEARD})]), misheard,
                        ToolCalls([Call("add_vehicle", add)]), read_back,
                        ToolCalls([Call("add_vehicle", {**add, "confirmed": True})]), added)
    caller = await launcher.ring(MARIA, StirVerstat=ATTESTED_VERSTAT)
    async with caller:
        for sentence in ("book_oil_change", "tomorrow_ten_am", "yes_thats_right"):
            await caller.wait_for_bot_silence(timeout=15)
            await caller.say(load(sentence))
            await caller.silence(1.0)
        await caller.wait_closed(timeout=30)

    assert launcher.policy.overruns == []
    heard = [launcher.openai.requests[i].last_user_text() for i in (0, 2, 4)]
    assert [MISHEARD in heard[0], SPELLED in heard[1], heard[2]] == [True, True, said[2]]
    assert "add_vehicle" in launcher.openai.requests[0].tool_names
    assert "add_vehicle" in launcher.openai.requests[0].messages[0]["content"]  # the instructions say how
    assert "That's a 2003 Honda Accord, VIN 1 H G, C M 8, 2 6 3, 3 A 0, 0 4 3, 5 2, with 180000 miles." \
        in " ".join(launcher.deepgram.spoken)
    record = await crm.lookup_customer(MARIA)
    assert [(v["vin"], v["year"], v["make"], v["model"], v["mileage"]) for v in record["vehicles"]] == [
        (HONDA, 2003, "Honda", "Accord", 180_000)]
    assert record["customer"]["id"] == maria
    log = await closed_log(caller.call_sid)
    assert ("caller", said[0]) in [(turn["role"], turn["text"]) for turn in log["transcript"]]
