-- Google Calendar event writes wait here until they are made (`calendar_adapter/outbox.py`): a
-- booking, move or cancellation writes its appointment and this row in one transaction and
-- commits; a worker then brings the appointment's event in line with it, retrying with back-off
-- while Google fails. Nothing is queued on the `local` calendar.
--
-- One row per appointment whose event is out of step. What to do follows from the appointment:
-- one without `calendar_event_id` gets an event created, one with it has the event moved to its
-- times, a cancelled one has its event deleted. So changes made while Google was down collapse
-- into one, and no two workers can apply an appointment's changes out of order.
CREATE TABLE calendar_outbox (
    appointment_id   bigint PRIMARY KEY REFERENCES appointments (id) ON DELETE CASCADE,
    -- The id a new event is created under, chosen before asking: a create whose answer was lost
    -- is found by it on the next try instead of made twice.
    event_id         text NOT NULL,
    -- Bumped by every change; a worker closes the row only if it still has the version it read.
    version          integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),  -- tries since the last success
    -- When the next try is due; a worker's claim moves it on for as long as a try may take.
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    queued_at        timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX calendar_outbox_due ON calendar_outbox (next_attempt_at);
