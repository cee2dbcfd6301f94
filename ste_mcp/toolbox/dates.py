"""BMTools date tools: ``add_date`` and ``get_today_date`` (they answered with a bare JSON string)."""

from __future__ import annotations

import datetime as dt

from ste_mcp.toolbox.api import Endpoint, invalid


def add_date(date: str, days: int) -> str:
    """``date`` ('yyyy-mm-dd') plus ``days`` (negative: earlier), as 'yyyy-mm-dd'."""
    try:
        start = dt.datetime.strptime(date.strip(), "%Y-%m-%d").date()
    except ValueError:
        raise invalid("date", f"must be a date written as 'yyyy-mm-dd', got {date!r}") from None
    try:
        return (start + dt.timedelta(days=days)).isoformat()
    except OverflowError:
        raise invalid("days", f"moves the date out of the calendar (years 1-9999): {days}") from None


def get_today_date() -> str:
    """Today's date on the server, 'yyyy-mm-dd'."""
    return dt.date.today().isoformat()


ENDPOINTS = [
    Endpoint("add_date", "/dates/add", add_date),
    Endpoint("get_today_date", "/dates/today", get_today_date),
]
