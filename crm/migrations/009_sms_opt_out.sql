-- When the customer texted STOP (or another of Twilio's opt-out words) to the shop's number:
-- from then on nothing is texted to them (telephony/texts.py), until they text START. NULL:
-- texts may go to them.
ALTER TABLE customers ADD COLUMN sms_opt_out_at timestamptz;
