"""The [limits] table and the rate flags → `Limits`: rates, concurrency, attempts, timeout,
spending cap, and the shared limiter."""

from __future__ import annotations

import math
import re
from dataclasses import fields
from typing import Any

from lm_deluge_cli.config.checks import check_keys, is_number, positive_int, table_of
from lm_deluge_cli.config.fields import AUTO, UNLIMITED, JobOverrides, Limits, Rate
from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.redaction import redact_url
from lm_deluge_cli.sampling import describe_value

__all__ = ["flag_rate", "parse_limits", "parse_rate"]

_LIMIT_KEYS = tuple(f.name for f in fields(Limits))

_LIMITER_SCHEMES = ("redis", "rediss", "unix")

_LIMITER_KEY = re.compile(r"[A-Za-z0-9._-]{1,64}")


def parse_limits(raw: Any, where: str, overrides: JobOverrides) -> Limits:
    table = table_of(raw, where, "limits")
    check_keys(table, _LIMIT_KEYS, where, "limits.")
    defaults = Limits()
    rpm = parse_rate(
        table.get("max_requests_per_minute", defaults.max_requests_per_minute),
        f"{where}: limits.max_requests_per_minute",
    )
    tpm = parse_rate(
        table.get("max_tokens_per_minute", defaults.max_tokens_per_minute),
        f"{where}: limits.max_tokens_per_minute",
    )
    # On the command line 0 means unlimited; in files, the word "unlimited" does.
    if overrides.max_requests_per_minute is not None:
        rpm = flag_rate(overrides.max_requests_per_minute, "--max-requests-per-minute")
    if overrides.max_tokens_per_minute is not None:
        tpm = flag_rate(overrides.max_tokens_per_minute, "--max-tokens-per-minute")

    def pick(key: str) -> tuple[Any, str]:
        """The value and how to name it in an error: the flag if given, else the job's key."""
        flag = getattr(overrides, key)
        # `is not None`, not `or`: a flag given as 0 must be rejected, not silently ignored.
        if flag is not None:
            return flag, "--" + key.replace("_", "-")
        return table.get(key, getattr(defaults, key)), f"{where}: limits.{key}"

    concurrent, concurrent_label = pick("max_concurrent_requests")
    attempts, attempts_label = pick("max_attempts")
    timeout, timeout_label = pick("request_timeout")
    if not is_number(timeout) or not timeout > 0 or not math.isfinite(timeout):
        raise ConfigError(
            f"{timeout_label} must be a positive number of seconds, got {describe_value(timeout)}"
        )
    max_cost, max_cost_label = pick("max_cost")
    if max_cost is not None and (
        not is_number(max_cost) or not max_cost > 0 or not math.isfinite(max_cost)
    ):
        raise ConfigError(
            f"{max_cost_label} must be a positive number of US dollars, "
            f"got {describe_value(max_cost)}"
        )
    limiter, limiter_label = pick("limiter")
    if limiter is not None and (
        not isinstance(limiter, str) or limiter.partition("://")[0] not in _LIMITER_SCHEMES
    ):
        raise ConfigError(
            f"{limiter_label} must be a Redis URL such as redis://localhost:6379/0 "
            f"(redis://, rediss:// or unix://), got "
            f"{redact_url(limiter) if isinstance(limiter, str) else describe_value(limiter)}"
        )
    key, key_label = pick("limiter_key")
    if not isinstance(key, str) or not _LIMITER_KEY.fullmatch(key):
        raise ConfigError(
            f"{key_label} must be 1 to 64 letters, digits, '.', '_' or '-', "
            f"got {describe_value(key)}"
        )
    return Limits(
        max_requests_per_minute=rpm,
        max_tokens_per_minute=tpm,
        max_concurrent_requests=positive_int(concurrent, concurrent_label),
        max_attempts=positive_int(attempts, attempts_label),
        request_timeout=float(timeout),
        max_cost=None if max_cost is None else float(max_cost),
        limiter=limiter,
        limiter_key=key,
    )


def parse_rate(value: Any, label: str) -> Rate:
    """A per-minute rate from a file: a positive number, "auto", or "unlimited" (None)."""
    if value is None or value == UNLIMITED:
        return None
    if value == AUTO:
        return AUTO
    if not is_number(value) or not value > 0 or not math.isfinite(value):
        raise ConfigError(
            f'{label} must be a positive number per minute, "auto" or "unlimited", got {value!r}'
        )
    return float(value)


def flag_rate(value: float | str, flag: str) -> Rate:
    """A per-minute rate from a flag: a positive number, auto, or 0 for unlimited (None)."""
    if isinstance(value, str):
        if value.strip().lower() == AUTO:
            return AUTO
        try:
            value = float(value)
        except ValueError:
            value = math.nan
    if value == 0:
        return None
    if not is_number(value) or not value > 0 or not math.isfinite(value):
        raise ConfigError(
            f"{flag} must be a positive number per minute, auto (learn it from the "
            "provider), or 0 for unlimited"
        )
    return float(value)
