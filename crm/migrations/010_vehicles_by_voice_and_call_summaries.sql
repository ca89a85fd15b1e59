-- A caller may add a vehicle by voice with its year, make and model only: the VIN can follow later.
-- (UNIQUE still holds for every VIN given; NULLs never clash.)
ALTER TABLE vehicles ALTER COLUMN vin DROP NOT NULL;

-- The summary for the service advisor, made by one model request after the call has ended
-- (bot/summaries.py), off the call's path. `summary_due_at` is when the next try is due: set when
-- the log is closed with something the caller said, put off while a try runs and after a failed
-- one, NULL once there is a summary, nothing to summarise, or no more tries.
ALTER TABLE call_logs
    ADD COLUMN summary jsonb CHECK (summary IS NULL OR jsonb_typeof(summary) = 'object'),
    ADD COLUMN summary_due_at timestamptz,
    ADD COLUMN summary_attempts integer NOT NULL DEFAULT 0;
CREATE INDEX call_logs_summary_due ON call_logs (summary_due_at) WHERE summary_due_at IS NOT NULL;
