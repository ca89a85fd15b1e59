"""Customers, vehicles, appointments and call logs: plain async functions over PostgreSQL,
with Redis as a read-through cache. Usable without Pipecat; configured from the environment."""

from crm.call_logs import (
    append_metrics,
    append_turn,
    claim_stream,
    close_call_log,
    get_call_log,
    identify_caller,
    open_call_log,
    purge_transcripts,
    record_flag,
    record_outcome,
    record_proof,
    streams_gone_elsewhere,
)
from crm.callback_requests import (
    mark_callback_handled,
    open_callback_requests,
    record_callback_request,
)
from crm.customers import create_customer, customer_record, forget_customer, lookup_customer
from crm.errors import CRMError, DatabaseUnavailable
from crm.vehicles import add_vehicle, decode_vin, get_vehicle_info


async def close() -> None:
    """Release the database pool and the cache connection."""
    from crm import cache, db, journal

    await db.close()
    await cache.close()
    await journal.close()


__all__ = [
    "CRMError",
    "DatabaseUnavailable",
    "add_vehicle",
    "append_metrics",
    "append_turn",
    "claim_stream",
    "close",
    "close_call_log",
    "create_customer",
    "customer_record",
    "decode_vin",
    "forget_customer",
    "get_call_log",
    "get_vehicle_info",
    "identify_caller",
    "lookup_customer",
    "mark_callback_handled",
    "open_call_log",
    "open_callback_requests",
    "purge_transcripts",
    "record_callback_request",
    "record_flag",
    "record_outcome",
    "record_proof",
    "streams_gone_elsewhere",
]
