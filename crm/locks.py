"""Every PostgreSQL advisory-lock id the application takes, and what each guards.

Advisory locks are shared by every session on the database, so two uses with one id would
wait for each other (or, for the live-run check, mistake one for the other): each has its own.
"""

MIGRATIONS = 4_211_001  # pg_advisory_xact_lock(MIGRATIONS): one process migrates at a time
REMINDER_RUNS = 4_211_003  # (REMINDER_RUNS, run id), held while the run lives: claims see it alive
BOOKING_DAY = 4_211_010  # (BOOKING_DAY, day ordinal), per transaction: one shop day's bookings queue
