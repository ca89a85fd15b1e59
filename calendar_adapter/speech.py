"""Dates and times as the agent says them ("Tuesday, March 10 at 9:30 AM")."""

from __future__ import annotations

from datetime import date, datetime, time


def say_day(day: date) -> str:
    return f"{day:%A, %B} {day.day}"


def say_time(moment: datetime | time) -> str:
    hour = moment.hour % 12 or 12
    return f"{hour}:{moment.minute:02d} {'AM' if moment.hour < 12 else 'PM'}"


def say_when(moment: datetime) -> str:
    return f"{say_day(moment.date())} at {say_time(moment)}"


def say_minutes(minutes: int) -> str:
    return f"{minutes} minutes"
