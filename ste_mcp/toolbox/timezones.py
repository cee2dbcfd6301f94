"""Stadia Maps TZ lookup: coordinates -> IANA zone (``timezonefinder``) and its offsets (``zoneinfo``).

Offsets are those in effect at ``timestamp`` (default: now, as the API documents), in seconds:
``base_utc_offset`` (standard time) and ``dst_offset`` (extra daylight-saving offset).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any
from zoneinfo import ZoneInfo

from ste_mcp.toolbox.api import Endpoint, ToolboxError, invalid, load_once


@load_once
def finder():
    from timezonefinder import TimezoneFinder

    return TimezoneFinder()


def offsets(tz_id: str, timestamp: float) -> tuple[int, int]:
    """(standard offset, DST offset) in seconds of ``tz_id`` at ``timestamp``."""
    try:
        moment = dt.datetime.fromtimestamp(timestamp, ZoneInfo(tz_id))
    except (OverflowError, OSError, ValueError):
        raise invalid("timestamp", f"is out of range: {timestamp}") from None
    total = moment.utcoffset() or dt.timedelta(0)
    dst = moment.dst() or dt.timedelta(0)
    return int((total - dst).total_seconds()), int(dst.total_seconds())


def tz_lookup(lat: float, lng: float, timestamp: float | None = None) -> dict[str, Any]:
    """Time zone of a point and its offsets at ``timestamp``."""
    if not -90 <= lat <= 90:
        raise invalid("lat", f"must be between -90 and 90, got {lat}")
    if not -180 <= lng <= 180:
        raise invalid("lng", f"must be between -180 and 180, got {lng}")
    tz_id = finder().timezone_at(lng=lng, lat=lat)
    if tz_id is None:
        raise ToolboxError(404, f"no time zone found at lat={lat}, lng={lng}")
    base, dst = offsets(tz_id, time.time() if timestamp is None else timestamp)
    return {"tz_id": tz_id, "base_utc_offset": base, "dst_offset": dst}


ENDPOINTS = [
    Endpoint(
        "Stadia_Maps_Time_Zone_API__TZ_Lookup_by_Location",
        "/tz/lookup",
        tz_lookup,
        no_default=frozenset({"timestamp"}),  # documented: "defaults to the present time"
    )
]
