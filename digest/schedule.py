"""When each subscriber's digest is due: their own time zone, time of day and frequency.

Pure: takes a schedule and instants, returns instants. A slot is the moment a digest is
due, as an aware datetime. Daylight-saving changes neither skip nor double a slot: a
local time that does not exist that day (the spring-forward gap) is sent at the same
instant shifted by the gap (02:30 becomes 03:30); a local time that happens twice (the
fall-back hour) is sent at its first occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Frequency = Literal["daily", "weekdays", "weekly"]
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True, slots=True)
class Schedule:
    zone: ZoneInfo
    send_at: time
    frequency: Frequency = "daily"
    weekday: int = 0  # for weekly: 0 = Monday

    def runs_on(self, day: date) -> bool:
        if self.frequency == "weekdays":
            return day.weekday() < 5
        if self.frequency == "weekly":
            return day.weekday() == self.weekday
        return True

    def slot_on(self, day: date) -> datetime:
        """The instant of `day`'s slot (in UTC), whether or not the schedule runs that day."""
        local = datetime.combine(day, self.send_at, tzinfo=self.zone)  # fold=0: first
        return local.astimezone(UTC)  # a time in the gap lands one gap later

    def latest_slot(self, now: datetime) -> datetime | None:
        """The most recent slot at or before `now`."""
        today = now.astimezone(self.zone).date()
        for back in range(9):
            day = today - timedelta(days=back)
            if self.runs_on(day):
                slot = self.slot_on(day)
                if slot <= now:
                    return slot
        return None

    def next_slot(self, now: datetime) -> datetime:
        """The first slot strictly after `now`."""
        today = now.astimezone(self.zone).date()
        for ahead in range(9):
            day = today + timedelta(days=ahead)
            if self.runs_on(day):
                slot = self.slot_on(day)
                if slot > now:
                    return slot
        raise AssertionError("every schedule runs at least once a week")

    def describe(self) -> str:
        every = {
            "daily": "every day",
            "weekdays": "Monday to Friday",
            "weekly": f"every {WEEKDAYS[self.weekday].capitalize()}",
        }[self.frequency]
        return f"{every} at {self.send_at:%H:%M} {self.zone.key}"


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do for one subscriber now."""

    action: Literal["send", "skip", "wait"]
    slot: datetime | None  # the slot sent or skipped
    next_slot: datetime
    reason: str = ""


def decide(
    schedule: Schedule, last_slot: datetime | None, now: datetime, grace: timedelta | None
) -> Decision:
    """Send the latest slot not yet handled; one missed by more than `grace` (daemon
    catch-up) is skipped and its papers roll into the next digest. `grace=None`: a manual
    run, which sends the current period whenever it is run."""
    latest = schedule.latest_slot(now)
    upcoming = schedule.next_slot(now)
    if latest is None or (last_slot is not None and latest <= last_slot):
        return Decision("wait", None, upcoming, "not due")
    if grace is not None and now - latest > grace:
        late = now - latest
        return Decision(
            "skip", latest, upcoming, f"missed by {_duration(late)} (grace {_duration(grace)})"
        )
    return Decision("send", latest, upcoming)


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"
