"""Working days for synthetic radiotherapy schedules: Monday-Friday minus public holidays.

Holidays come from the ``holidays`` package for the protocol's country (``schedule.holidays_country``),
including China's adjusted weekend working days (调休), so CFRT fractions fall on working days as
radiotherapy.md §2 requires and as ``abscopal.protocol.calendar`` counts them.
"""

from __future__ import annotations

import bisect
import datetime as dt

import holidays


class WorkingDays:
    """The working days between two dates, with O(log n) look-ups for scheduling."""

    def __init__(self, first: dt.date, last: dt.date, country: str) -> None:
        years = range(first.year, last.year + 1)
        try:
            calendar: holidays.HolidayBase | None = holidays.country_holidays(country, years=years)
        except NotImplementedError:
            calendar = None
        days: list[int] = []
        day = first
        one = dt.timedelta(days=1)
        while day <= last:
            if (calendar is not None and calendar.is_working_day(day)) or (calendar is None and day.weekday() < 5):
                days.append(day.toordinal())
            day += one
        self._ordinals = days
        self._set = set(days)
        self._first, self._last = first.toordinal(), last.toordinal()

    def is_working_day(self, day: dt.date) -> bool:
        """Monday-Friday except public holidays, plus the adjusted weekend working days the calendar lists."""
        o = day.toordinal()
        if self._first <= o <= self._last:
            return o in self._set
        return day.weekday() < 5

    def index(self, day: dt.date) -> int:
        """Position of ``day`` among the working days (that of the next working day if it is not one)."""
        return bisect.bisect_left(self._ordinals, day.toordinal())

    def on_or_after(self, day: dt.date) -> dt.date:
        """The first working day on or after ``day``."""
        i = bisect.bisect_left(self._ordinals, day.toordinal())
        if i >= len(self._ordinals):
            return _after_range(day)
        return dt.date.fromordinal(self._ordinals[i])

    def consecutive(self, start: dt.date, count: int, skip_after: int = 0, skip: int = 0) -> list[dt.date]:
        """``count`` working days from ``start``, losing ``skip`` working days after the first ``skip_after``."""
        i = bisect.bisect_left(self._ordinals, start.toordinal())
        out: list[dt.date] = []
        for n in range(count):
            j = i + n + (skip if n >= skip_after else 0)
            if j < len(self._ordinals):
                out.append(dt.date.fromordinal(self._ordinals[j]))
            else:  # past the precomputed range: plain Monday-Friday
                previous = out[-1] if out else start
                out.append(_after_range(previous + dt.timedelta(days=1)))
        return out


def _after_range(day: dt.date) -> dt.date:
    # beyond the precomputed range (only reached past the data cut-off): next Monday-Friday
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def working_days_spanned(days: WorkingDays, first: dt.date, last: dt.date) -> int:
    """Working days from ``first`` to ``last`` inclusive (both are working days)."""
    return days.index(last) - days.index(first) + 1
