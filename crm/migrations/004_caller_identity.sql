-- How each call's caller was identified: how far the caller ID could be believed, which
-- customer records the caller proved they belong to (last name plus a vehicle fact), and how
-- many such proofs failed.
ALTER TABLE call_logs
    ADD COLUMN caller_id text CHECK (caller_id IN ('attested', 'dialled', 'unattested', 'withheld')),
    ADD COLUMN verified_customer_ids bigint[] NOT NULL DEFAULT '{}',
    ADD COLUMN failed_verifications integer NOT NULL DEFAULT 0 CHECK (failed_verifications >= 0);
