"""Reminder calls: `python -m reminders` phones the customers of tomorrow's scheduled
appointments, each at most once, only on the allowlist and only inside calling hours.

Plain async functions over the CRM database and Twilio's REST API; no Pipecat here. The call
itself is answered by the launcher (`POST /twilio/reminder`, then the agent in reminder mode).
"""

from reminders.policy import ReminderConfig
from reminders.run import run
from reminders.summary import Summary

__all__ = ["ReminderConfig", "Summary", "run"]
