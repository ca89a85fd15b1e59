"""How far Twilio's From and StirVerstat let a caller ID be believed."""

from __future__ import annotations

import pytest

from crm.identity import CallerId
from telephony.webhooks import caller_id


@pytest.mark.parametrize(("number", "verstat", "expected"), [
    ("+12125550123", "TN-Validation-Passed-A", CallerId.ATTESTED),
    ("+12125550123", "TN-Validation-Passed-B", CallerId.UNATTESTED),
    ("+12125550123", "TN-Validation-Failed-A", CallerId.UNATTESTED),
    ("+12125550123", None, CallerId.UNATTESTED),
    ("anonymous", None, CallerId.WITHHELD),
    ("Restricted", "TN-Validation-Passed-A", CallerId.WITHHELD),
    ("+266696687", None, CallerId.WITHHELD),
    ("+7378742833", None, CallerId.WITHHELD),
    ("", None, CallerId.WITHHELD),
    (None, None, CallerId.WITHHELD),
    ("client:browser", None, CallerId.WITHHELD),
])
def test_how_far_a_caller_id_is_believed(number: str | None, verstat: str | None,
                                         expected: CallerId) -> None:
    assert caller_id(number, verstat) is expected
