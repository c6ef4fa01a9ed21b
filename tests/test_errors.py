"""The error tree: every class drawn in the docstring, each status's class, and what a
class says about retrying and stopping its model."""

from __future__ import annotations

import re

import pytest

from lm_deluge_cli import errors
from lm_deluge_cli.errors import (
    EXIT_FATAL_PROVIDER,
    EXIT_LINES_LEFT,
    EXIT_USAGE,
    AllModelsDeadError,
    APIError,
    APIStatusError,
    AuthenticationError,
    ConfigError,
    InternalServerError,
    LMDelugeError,
    NotImplementedByServerError,
    NotRunError,
    OverloadedError,
    QuotaExhaustedError,
    RateLimitError,
    RequestCancelledError,
    status_error_class,
)


def _classes() -> list[type[LMDelugeError]]:
    return [
        value
        for name in errors.__all__
        if isinstance(value := getattr(errors, name), type) and issubclass(value, LMDelugeError)
    ]


def test_the_docstring_draws_every_class_under_its_parent() -> None:
    doc = errors.__doc__ or ""
    drawn: dict[str, int] = {}
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in doc.splitlines():
        found = re.match(r"^([│ ]*(?:[├└]── )?)([A-Z]\w+Error)\b", line)
        if found is None:
            continue
        depth, name = len(found.group(1)), found.group(2)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            parents[name] = stack[-1][1]
        stack.append((depth, name))
        drawn[name] = depth
    for cls in _classes():
        assert cls.__name__ in drawn, f"{cls.__name__} is missing from errors.py's tree"
        if cls is not LMDelugeError:
            assert parents[cls.__name__] == cls.__mro__[1].__name__, cls.__name__


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (401, AuthenticationError),
        (429, RateLimitError),
        (499, RequestCancelledError),
        (500, InternalServerError),
        (501, NotImplementedByServerError),
        (503, InternalServerError),
        (529, OverloadedError),
        (418, APIStatusError),
    ],
)
def test_each_status_has_its_class(status: int, cls: type[APIStatusError]) -> None:
    assert status_error_class(status) is cls


@pytest.mark.parametrize(
    ("cls", "retryable", "fatal"),
    [
        (RateLimitError, True, False),
        (RequestCancelledError, True, False),
        (NotImplementedByServerError, False, False),
        (QuotaExhaustedError, False, True),
        (AuthenticationError, False, True),
    ],
)
def test_a_class_says_whether_to_retry_and_whether_its_model_stops(
    cls: type[APIStatusError], retryable: bool, fatal: bool
) -> None:
    error = cls("x", status_code=400)
    assert (error.retryable, error.fatal) == (retryable, fatal)


def test_a_spent_quota_is_not_a_rate_limit_so_the_run_does_not_pause_on_it() -> None:
    # The engine pauses every request on a RateLimitError; a quota no wait refills is not one.
    assert not issubclass(QuotaExhaustedError, RateLimitError)


def test_exit_codes() -> None:
    assert ConfigError("x").exit_code == EXIT_USAGE
    dead = AllModelsDeadError(AuthenticationError("401: bad key", status_code=401), "m", "KEY")
    assert dead.exit_code == EXIT_FATAL_PROVIDER
    assert str(dead) == "m refused the requests (check KEY): 401: bad key"
    assert NotRunError("x").exit_code == EXIT_LINES_LEFT
    assert NotRunError.type == "not_run"
    assert issubclass(APIStatusError, APIError)
