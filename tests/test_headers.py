"""Header tables: ``retry-after``/``retry-after-ms`` values and reset durations → seconds."""

from __future__ import annotations

import pytest

from lm_deluge_cli.headers import parse_duration, parse_retry_after

# Sun, 06 Nov 1994 08:49:37 GMT, the example date of RFC 7231.
RFC_EPOCH = 784111777.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1m30.5s", 90.5),
        ("1h2m3s", 3723.0),
        ("0.5", 0.5),
        ("0", 0.0),
        ("12", 12.0),
        ("0s", 0.0),
        ("2m", 120.0),
        ("1.5h", 5400.0),
        ("500us", 0.0005),
        (" 3s ", 3.0),
        ("", None),
        ("s", None),
        ("1x", None),
        ("abc", None),
        ("-1s", None),
        ("-2", None),
        ("1s garbage", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_parse_duration(value: str, expected: float | None) -> None:
    if expected is None:
        assert parse_duration(value) is None
    else:
        assert parse_duration(value) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": " 7 "}, 7.0),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": "-3"}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "1500.5"}, 1.5005),
        # retry-after-ms wins over retry-after.
        ({"retry-after-ms": "100", "retry-after": "9"}, 0.1),
        # An unusable retry-after-ms falls back to retry-after.
        ({"retry-after-ms": "x", "retry-after": "9"}, 9.0),
        ({"retry-after-ms": "-5", "retry-after": "3"}, 3.0),
        ({"retry-after-ms": "-5"}, None),
        # HTTP dates, measured from RFC_EPOCH.
        ({"retry-after": "Sun, 06 Nov 1994 08:49:47 GMT"}, 10.0),
        ({"retry-after": "Sun, 06 Nov 1994 08:50:37 GMT"}, 60.0),
        ({"retry-after": "Sun, 06 Nov 1994 08:49:37 GMT"}, 0.0),
        ({"retry-after": "Sun, 06 Nov 1994 08:40:00 GMT"}, 0.0),
        ({"retry-after": "Sun, 06 Nov 1994 08:49:47 -0000"}, 10.0),
        ({"retry-after": "Sun, 99 Nov 1994 08:49:47 GMT"}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    result = parse_retry_after(headers, now=RFC_EPOCH)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


def test_parse_retry_after_date_defaults_to_current_time() -> None:
    # A date long past, measured from the real clock, is "retry now".
    assert parse_retry_after({"retry-after": "Sun, 06 Nov 1994 08:49:37 GMT"}) == 0.0
