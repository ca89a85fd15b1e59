import pytest

from config.phones import e164


@pytest.mark.parametrize(
    "written",
    ["+12125550123", "(212) 555-0123", "212.555.0123", "212 555 0123", "1-212-555-0123",
     "+1 (212) 555-0123", "tel:+1-212-555-0123"],
)
def test_every_reasonable_format_becomes_e164(written: str) -> None:
    assert e164(written, "US") == "+12125550123"


def test_region_applies_only_without_country_code() -> None:
    assert e164("020 7946 0018", "GB") == "+442079460018"
    assert e164("+44 20 7946 0018", "US") == "+442079460018"


@pytest.mark.parametrize("nonsense", ["", "hello", "123", "+1 212 555 01234567", "+1 000 555 0123"])
def test_nonsense_is_a_value_error(nonsense: str) -> None:
    with pytest.raises(ValueError):
        e164(nonsense, "US")
