-- What the call's frame processors flagged for a person to look at (a caller who sounded upset,
-- say: `pipeline/plugins.py`), appended as it happens: {"name", "detail", "at"}. Kept when the
-- transcript is purged, like the outcome, so a flag's detail never quotes the caller.
ALTER TABLE call_logs
    ADD COLUMN flags jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(flags) = 'array');
