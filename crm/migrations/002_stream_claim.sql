-- A media stream may open once per call: the first stream to claim the call log wins, on any
-- launcher instance, because the claim is a row update in the shared database.
ALTER TABLE call_logs ADD COLUMN stream_claimed_at timestamptz;
