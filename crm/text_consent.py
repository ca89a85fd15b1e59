"""Whether a customer may be texted: they have not opted out (texting STOP to the shop's number).

Twilio keeps its own block on a number that texted STOP; this is the shop's record of it, so
nothing is even attempted, and so it holds for every number the shop texts from."""

from __future__ import annotations

from crm import db


async def texting_number(customer_id: int) -> str | None:
    """The customer's phone (E.164) if texts may go to them; None if they opted out or are gone."""
    async with db.connection() as conn:
        row = await (await conn.execute(
            "SELECT phone FROM customers WHERE id = %s AND sms_opt_out_at IS NULL",
            (customer_id,))).fetchone()
    return row["phone"] if row else None


async def record_consent(phone: str, *, opted_out: bool) -> bool:
    """The customer with `phone` (E.164) opted out of texts, or back in; False when no customer
    has that number. Opting out again keeps the first time."""
    sql = ("UPDATE customers SET sms_opt_out_at = coalesce(sms_opt_out_at, now()) WHERE phone = %s"
           if opted_out else "UPDATE customers SET sms_opt_out_at = NULL WHERE phone = %s")
    async with db.connection() as conn:
        changed = await conn.execute(sql, (phone,))
    return changed.rowcount > 0
