"""A VIN as a caller says it: read from spoken text, checked, and grouped for reading back.

Callers spell a VIN every way there is: "1HG CM8-26...", "one H G", "C as in Charlie", NATO
words ("hotel golf"), "double seven", "oh" for zero. `read` turns that into the 17 characters
and checks them the North American way (ISO 3779 with the check digit of 49 CFR 565: the 9th
character), so a misheard character is caught before anything is stored. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LENGTH = 17
CHECK_POSITION = 9  # 1-based
# Read back in threes, as phone numbers are: short enough to repeat, and the check digit ends a group.
GROUP = 3

_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_LETTER_VALUES = dict(zip("ABCDEFGHJKLMNPRSTUVWXYZ",
                          (1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 7, 9, 2, 3, 4, 5, 6, 7, 8, 9), strict=True))
_NEVER = frozenset("IOQ")  # too like 1 and 0: no VIN has them

_DIGIT_WORDS = {"zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4", "for": "4",
                "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9"}
_TEENS = {"ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14",
          "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19"}
_TENS = {"twenty": "2", "thirty": "3", "forty": "4", "fifty": "5", "sixty": "6", "seventy": "7",
         "eighty": "8", "ninety": "9"}
_NATO = {"alfa": "A", "alpha": "A", "bravo": "B", "charlie": "C", "delta": "D", "echo": "E",
         "foxtrot": "F", "golf": "G", "hotel": "H", "india": "I", "juliet": "J", "juliett": "J",
         "kilo": "K", "lima": "L", "mike": "M", "november": "N", "oscar": "O", "papa": "P",
         "quebec": "Q", "romeo": "R", "sierra": "S", "tango": "T", "uniform": "U", "victor": "V",
         "whiskey": "W", "whisky": "W", "xray": "X", "yankee": "Y", "zulu": "Z"}
# Letter names as speech-to-text writes them out.
_LETTER_NAMES = {"bee": "B", "cee": "C", "see": "C", "sea": "C", "dee": "D", "ee": "E", "eff": "F",
                 "gee": "G", "aitch": "H", "jay": "J", "kay": "K", "el": "L", "ell": "L", "em": "M",
                 "en": "N", "pee": "P", "ar": "R", "are": "R", "ess": "S", "tee": "T", "vee": "V",
                 "ex": "X", "why": "Y", "zee": "Z", "zed": "Z"}
_REPEATS = {"double": 2, "triple": 3}
_FILLERS = frozenset({"dash", "hyphen", "space", "then", "and", "letter", "number", "capital"})
_TOKEN = re.compile(r"[A-Za-z0-9]+")


@dataclass(frozen=True)
class VinCheck:
    """What was made of a spoken VIN: the 17 characters when `valid`, else why not."""

    vin: str  # as far as it could be read (for the model to say what it heard)
    valid: bool
    reason: str | None = None

    @property
    def read_back(self) -> str:
        return read_back(self.vin)


def check_digit(vin: str) -> str:
    """The 9th character a VIN of these 17 characters must have ("0"-"9" or "X")."""
    total = sum(weight * (int(char) if char.isdigit() else _LETTER_VALUES[char])
                for char, weight in zip(vin, _WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def read(spoken: str | None) -> VinCheck:
    """The VIN in `spoken` (typed or as said), checked: 17 characters, no I, O or Q, the check digit."""
    vin, unreadable = _characters(spoken or "")
    if unreadable:
        return VinCheck(vin, False, f"could not make out {unreadable!r} as a letter or digit of a VIN")
    if len(vin) != LENGTH:
        return VinCheck(vin, False, f"a VIN has 17 characters, this one has {len(vin)}")
    if _NEVER & set(vin):
        return VinCheck(vin, False, "a VIN uses digits and letters except I, O and Q"
                                    " (a 1 or a 0 is likely meant)")
    if vin[CHECK_POSITION - 1] != check_digit(vin):
        return VinCheck(vin, False, "the check digit (9th character) does not match; a character is"
                                    " likely misheard")
    return VinCheck(vin, True)


def read_back(vin: str) -> str:
    """`vin` as the agent says it: characters one by one, in groups ("1 H G, C M 8, ...")."""
    return ", ".join(" ".join(vin[i:i + GROUP]) for i in range(0, len(vin), GROUP))


def _characters(spoken: str) -> tuple[str, str | None]:
    """The characters `spoken` names, and the first word that names none (None: all read)."""
    words = _TOKEN.findall(re.sub(r"\bx[\s-]+ray\b", "xray", spoken, flags=re.IGNORECASE))
    out: list[str] = []
    repeat = 1
    i = 0
    while i < len(words):
        word, lower = words[i], words[i].lower()
        i += 1
        if lower in _REPEATS:
            if lower == "double" and i < len(words) and words[i].lower() == "you":
                i += 1  # "double you" is W
                out.append("W")
                continue
            repeat = _REPEATS[lower]
            continue
        if lower in _FILLERS:
            continue
        named = _word(word, lower)
        if named is None:
            return "".join(out), word
        # "C as in Charlie", "C for Charlie", "C like Charlie": the example word is what was meant
        # (it is said to settle a letter that sounds like another).
        if len(named) == 1 and named.isalpha():
            example = _example_after(words, i)
            if example is not None:
                i, named = example
        elif lower in _TENS:  # "twenty six" is 26, "twenty" alone 20
            unit = _DIGIT_WORDS.get(words[i].lower(), "0") if i < len(words) else "0"
            named += unit
            i += unit != "0"
        out.append(named[0] * repeat + named[1:])
        repeat = 1
    return "".join(out), None


def _word(word: str, lower: str) -> str | None:
    """The characters one word names, or None."""
    for table in (_DIGIT_WORDS, _TEENS, _TENS, _NATO, _LETTER_NAMES):
        if lower in table:
            return table[lower]
    if len(word) == 1 or any(char.isdigit() for char in word) or word.isupper():
        return word.upper()  # "H", "1HG", "CM": characters as written
    return None


def _example_after(words: list[str], i: int) -> tuple[int, str] | None:
    """After a letter at `words[i - 1]`: the index past "as in Charlie" (or "for"/"like"), and the
    example's initial; None when no example follows."""
    rest = [w.lower() for w in words[i:i + 3]]
    if rest[:2] == ["as", "in"] and len(rest) == 3:
        skip = 2
    elif rest[:1] in (["for"], ["like"]) and len(rest) >= 2 and rest[1].isalpha() \
            and (rest[0] == "like" or rest[1][0] == words[i - 1].lower()):
        skip = 1  # "for" is a four unless a word of that letter follows ("B for boy")
    else:
        return None
    example = words[i + skip]
    if not example.isalpha():
        return None
    return i + skip + 1, example[0].upper()
