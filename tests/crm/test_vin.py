"""crm/vin.py: a VIN read from the ways callers say it, checked, and grouped for reading back."""

from __future__ import annotations

import pytest

from crm import vin

HONDA = "1HGCM82633A004352"  # check digit 3
TESLA = "5YJ3E1EAXJF000001"  # check digit X
CIVIC = "2HGFC2F50KH000001"  # check digit 0


@pytest.mark.parametrize(("spoken", "expected"), [
    (HONDA, HONDA),
    ("1hgcm82633a004352", HONDA),
    ("1HG CM8 263 3A0 043 52", HONDA),
    ("1HG-CM8-2633-A004352", HONDA),
    ("1-H-G, C M 8, 2 6 3, 3 A 0, 0 4 3, 5 2.", HONDA),
    ("one H G C M eight two six three three A zero zero four three five two", HONDA),
    ("One h g c m eight two six three three a oh oh four three five two", HONDA),
    ("one hotel golf charlie mike eight two six three three alpha zero zero four three five two", HONDA),
    ("1 H as in Hotel G as in golf C as in Charlie M as in Mary 8 2 6 3 3 A as in apple 0 0 4 3 5 2", HONDA),
    ("1 H G C for Charlie M like Mike 82633 A double zero 4352", HONDA),
    ("one aitch gee see em eight two six three three A double oh four three five two", HONDA),
    ("1HGCM8 twenty six thirty three A 004352", HONDA),
    # A letter misheard as its neighbour is settled by the example word said after it.
    ("1 H G B as in Charlie M 8 2 6 3 3 A 0 0 4 3 5 2", HONDA),
    ("5 Y J 3 E 1 E A X J F triple zero double oh one", TESLA),
    ("five yankee juliet three echo one echo alpha x-ray juliett foxtrot zero zero zero zero zero one",
     TESLA),
    ("5YJ3E1EA ex JF 00000 1", TESLA),
    ("2 H G F C 2 F 5 zero K H triple zero double zero 1", CIVIC),
    ("number 2, letter H, G, F, C, 2, F, 5, 0, dash K H, then 000001", CIVIC),
])
def test_spellings_read_as_one_vin(spoken: str, expected: str) -> None:
    checked = vin.read(spoken)
    assert (checked.vin, checked.valid, checked.reason) == (expected, True, None)


@pytest.mark.parametrize(("spoken", "reason"), [
    ("1HGCM82643A004352", "check digit"),  # one digit misheard
    ("1HGCM82633A004353", "check digit"),
    ("1HGCM8263XA004352", "check digit"),
    ("5YJ3E1EA7JF000001", "check digit"),
    ("1HGCM82633A00435O", "except I, O and Q"),
    ("1 H G C M 8 2 6 3 3 A oscar 0 4 3 5 2", "except I, O and Q"),
    ("1 H G C M 8 2 6 3 3 A 0 0 4 3 5 india", "except I, O and Q"),
    ("1HGCM82633AQ04352", "except I, O and Q"),
    ("1HGCM82633A00435", "17 characters, this one has 16"),
    ("1HGCM82633A0043520", "17 characters, this one has 18"),
    ("", "17 characters, this one has 0"),
    ("1HG CM8 banana 263", "'banana'"),
])
def test_a_vin_that_does_not_check_out_says_why(spoken: str, reason: str) -> None:
    checked = vin.read(spoken)
    assert checked.valid is False
    assert checked.reason is not None and reason in checked.reason


# The transliteration table of 49 CFR 565.15, written out here on its own.
VALUES = {**{str(d): d for d in range(10)}, **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
          **dict(zip("JKLMN", range(1, 6), strict=True)), "P": 7, "R": 9,
          **dict(zip("STUVWXYZ", range(2, 10), strict=True))}


def test_one_misheard_character_is_caught_unless_it_counts_the_same() -> None:
    # 11 is prime and every weight but the 9th's is 1-10: a character of another value always
    # changes the sum's remainder; only those of the same value (A and J, say) slip through.
    for position in range(vin.LENGTH):
        for char in VALUES:
            changed = HONDA[:position] + char + HONDA[position + 1:]
            if changed == HONDA:
                continue
            slips = position != vin.CHECK_POSITION - 1 and VALUES[char] == VALUES[HONDA[position]]
            assert vin.read(changed).valid is slips, changed


def test_check_digit_follows_the_transliteration_table() -> None:
    assert [vin.check_digit(v) for v in (HONDA, TESLA, CIVIC)] == ["3", "X", "0"]
    # J and A both count 1, S and B both 2: swapping them keeps the digit.
    assert vin.check_digit("1HGCM82633J004352") == vin.check_digit("1HGCM82633A004352")


def test_read_back_is_in_groups_of_three_one_character_at_a_time() -> None:
    assert vin.read_back(HONDA) == "1 H G, C M 8, 2 6 3, 3 A 0, 0 4 3, 5 2"
    assert vin.read(TESLA.lower()).read_back == "5 Y J, 3 E 1, E A X, J F 0, 0 0 0, 0 1"
