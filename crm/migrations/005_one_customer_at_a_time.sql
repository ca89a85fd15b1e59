-- One customer, one appointment at a time: two active appointments of one customer may not
-- overlap, in whichever bays. The database keeps this, as it keeps bays from being double-booked.
--
-- Active appointments that already overlap another of the same customer's stay as booked (a
-- migration does not cancel what someone was promised): each one overlapping an earlier-booked
-- one (a lower id) is marked `customer_overlap_allowed`, which leaves it out of the constraint,
-- and moving it clears the mark. Of two overlapping rows the later is always marked, so the
-- unmarked rows overlap nothing and the constraint can be built over them.
ALTER TABLE appointments ADD COLUMN customer_overlap_allowed boolean NOT NULL DEFAULT false;

UPDATE appointments a SET customer_overlap_allowed = true
WHERE a.status IN ('scheduled', 'confirmed')
  AND EXISTS (
      SELECT FROM appointments b
      WHERE b.customer_id = a.customer_id AND b.id < a.id AND b.status IN ('scheduled', 'confirmed')
        AND appointment_period(b.scheduled_at, b.duration_minutes)
            && appointment_period(a.scheduled_at, a.duration_minutes)
  );

ALTER TABLE appointments ADD CONSTRAINT appointments_no_customer_overlap EXCLUDE USING gist (
    customer_id WITH =, appointment_period(scheduled_at, duration_minutes) WITH &&
) WHERE (status IN ('scheduled', 'confirmed') AND NOT customer_overlap_allowed);
