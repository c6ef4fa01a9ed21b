"""Waits and durations read from HTTP response headers (``retry-after``, ``retry-after-ms``,
``x-ratelimit-reset-*``): small pure functions that adapters and the retry policy share.

A low module: it imports nothing of this package, so any layer may use it.
"""

from __future__ import annotations

import datetime
import email.utils
import math
import re
import time
from collections.abc import Mapping

__all__ = ["parse_duration", "parse_retry_after"]

_UNIT_SECONDS = {
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
    "µs": 1e-6,
    "ns": 1e-9,
}
# Go-style durations ("1m30.5s", "20ms"), which OpenAI's x-ratelimit-reset-* use.
# "ms" is listed before "m" so the alternation does not stop at the "m".
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|ns|h|m|s)")
_DURATION = re.compile(rf"(?:{_PART.pattern})+")


def _finite_nonnegative(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    return number


def parse_duration(value: str) -> float | None:
    """Seconds in a reset header: ``"1s"``, ``"6m0s"``, ``"20ms"``, ``"1h2m3s"`` or ``"0.5"``.

    None when the value is not a non-negative duration.
    """
    text = value.strip()
    plain = _finite_nonnegative(text)
    if plain is not None:
        return plain
    if not _DURATION.fullmatch(text):
        return None
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _PART.findall(text))


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asks us to wait, from lower-case response header names.

    ``retry-after-ms`` (milliseconds) wins; otherwise ``retry-after`` as seconds or as
    an HTTP date, measured from `now` (default: the current time; a past date gives 0).
    None when absent, unparsable or negative.
    """
    millis = headers.get("retry-after-ms")
    if millis is not None:
        parsed = _finite_nonnegative(millis.strip())
        if parsed is not None:
            return parsed / 1000.0
    value = headers.get("retry-after")
    if value is None:
        return None
    text = value.strip()
    try:
        float(text)
    except ValueError:
        pass
    else:
        # A number that is negative or not finite is not a date either.
        return _finite_nonnegative(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        # "-0000" parses naive; HTTP dates are always GMT.
        when = when.replace(tzinfo=datetime.UTC)
    reference = time.time() if now is None else now
    return max(0.0, when.timestamp() - reference)
