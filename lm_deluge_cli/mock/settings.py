"""How the mock provider behaves: latency, limits, injected failures, the expected key."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.mock.faults import check_faults

__all__ = ["MOCK_DEFAULTS", "MockSettings", "check_type", "mock_settings"]

_EPSILON = 1e-9  # float slack when the failure rates are added up

# What a model on the mock simulates unless its entry says otherwise (mock:fast: nothing).
MOCK_DEFAULTS: Mapping[str, float] = MappingProxyType({"latency_s": 0.2, "latency_jitter_s": 0.1})


@dataclass(frozen=True, slots=True)
class MockSettings:
    """How the mock provider behaves, in every wire format it speaks. Every field is
    optional; by default it answers at once, never fails and never limits.

    - ``latency_s``: seconds before each admitted request is answered.
    - ``latency_jitter_s``: up to this much extra latency, drawn uniformly per request.
    - ``requests_per_minute`` / ``tokens_per_minute``: the limits (None = unlimited), shared
      by every format one simulator serves. A request costs its prompt tokens plus its
      maximum output tokens (else 16), as OpenAI counts it; one costing more than a minute's
      tokens is refused with a 429 that waiting cannot fix, as OpenAI does.
    - ``burst_s``: each limit's bucket holds this many seconds of its per-minute rate
      (60 = a full minute of burst); it starts full and refills continuously.
    - ``charge_refusals``: a refused request still consumes quota, as OpenAI documents;
      the bucket may go negative, down to minus one minute's worth.
    - ``rate_limit_headers``: send the provider's rate-limit headers (``x-ratelimit-*``,
      ``anthropic-ratelimit-*``, …) for each limit that is set; Gemini and Bedrock send none.
    - ``retry_after``: tell a refused request how long to wait, where the provider does:
      ``retry-after`` (whole seconds, rounded up) and OpenAI's ``retry-after-ms``, or
      Gemini's ``RetryInfo.retryDelay``.
    - ``error_rate`` / ``overload_rate``: fraction of admitted requests answered with the
      provider's internal error / overload (OpenAI 500 / 529, Anthropic 500 / 529, Gemini
      500 / 503, …).
    - ``drop_rate`` / ``hang_rate``: fraction whose connection is closed without an answer /
      never answered (only a server can act these out).
    - ``faults``: any other failure, as ``{fault: fraction}``: an HTTP status from 400 to 599
      (``"502"``, ``"408"``, ``"429"`` …) is answered with the provider's own error for it;
      ``drop``, ``hang``, ``reset_mid_body``, ``truncated_json``, ``html``,
      ``missing_fields``, ``slow_body`` and ``huge_body`` break the answer on the wire;
      ``schema_violation``, ``empty_answer`` and ``invalid_tool_arguments`` send a well-formed
      answer that is wrong (see `lm_deluge_cli.mock.faults`). With the rates above
      they add up to at most 1.
    - ``fault_first_n``: only the first N admitted requests can fail (every injected failure,
      the rates above included); later ones are answered normally. None: any request.
    - ``slow_body_s``: how long a ``slow_body`` answer takes to dribble its body out.
    - ``huge_body_bytes``: the size a ``huge_body`` answer's completion is padded to.
    - ``tool_rounds``: when a request offers tools and lets the model choose (``auto``), a
      conversation calls tools in up to this many assistant turns (its own number, from 1
      to this, drawn from its first user message) and then answers in text; 0: never on
      auto. See `lm_deluge_cli.mock.tools`.
    - ``prompt_cache_min_tokens``: the shortest prompt prefix Anthropic's prompt cache
      (Messages and Bedrock) keeps; 1024, the API's minimum for most models.
    - ``api_key``: if set, a request without this key in the provider's header gets the
      provider's authentication error (for Bedrock: the access key id of the signature).
    - ``seed``: seeds latency jitter and failure draws, so a run can be replayed.
    """

    latency_s: float = 0.0
    latency_jitter_s: float = 0.0
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    burst_s: float = 1.0
    charge_refusals: bool = False
    rate_limit_headers: bool = True
    retry_after: bool = True
    error_rate: float = 0.0
    overload_rate: float = 0.0
    drop_rate: float = 0.0
    hang_rate: float = 0.0
    # Not hashed: a mapping has no hash, and the other fields already tell settings apart.
    faults: Mapping[str, float] = field(default_factory=dict, hash=False)
    fault_first_n: int | None = None
    slow_body_s: float = 5.0
    huge_body_bytes: int = 20_000_000
    tool_rounds: int = 1
    prompt_cache_min_tokens: int = 1024
    api_key: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("latency_s", "latency_jitter_s"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"mock.{name} must be >= 0")
        if not 0 <= self.slow_body_s < math.inf:
            raise ConfigError("mock.slow_body_s must be a number of seconds >= 0")
        for name in ("fault_first_n", "huge_body_bytes", "tool_rounds", "prompt_cache_min_tokens"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or value < 0):
                raise ConfigError(f"mock.{name} must be a whole number >= 0")
        # Read-only, so the frozen settings cannot change under a running simulator.
        object.__setattr__(self, "faults", MappingProxyType(check_faults(self.faults)))
        for name in ("requests_per_minute", "tokens_per_minute", "burst_s"):
            value = getattr(self, name)
            if value is not None and not (0 < value < math.inf):
                raise ConfigError(f"mock.{name} must be a positive number")
        rates = ("error_rate", "overload_rate", "drop_rate", "hang_rate")
        for name in rates:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"mock.{name} must be between 0 and 1")
        total = sum(getattr(self, name) for name in rates) + sum(self.faults.values())
        if total > 1.0 + _EPSILON:
            summed = " + ".join(rates) + (" + the rates in mock.faults" if self.faults else "")
            raise ConfigError(f"mock: {summed} must not exceed 1 (they add up to {total:g})")

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> MockSettings:
        """Settings from a ``mock = {...}`` table; a wrong key or type raises ConfigError."""
        values: dict[str, Any] = {}
        for key, value in d.items():
            kind = _FIELD_KINDS.get(key)
            if kind is None:
                known = ", ".join(_FIELD_KINDS)
                raise ConfigError(f"mock: unknown key {key!r}; known keys: {known}")
            values[key] = check_type(key, value, *kind)
        return cls(**values)


def mock_settings(overrides: Mapping[str, Any], wire_id: str) -> MockSettings:
    """A model's settings: its entry's ``mock`` table (`overrides`) over the defaults, which
    give mock:fast (`wire_id` "fast") no latency and every other model a realistic one."""
    base: dict[str, Any] = {} if wire_id == "fast" else dict(MOCK_DEFAULTS)
    base.update(overrides)
    return MockSettings.from_mapping(base)


# field → (type, may be None); bools are rejected where numbers are expected.
_FIELD_KINDS: dict[str, tuple[type, bool]] = {
    "latency_s": (float, False),
    "latency_jitter_s": (float, False),
    "requests_per_minute": (float, True),
    "tokens_per_minute": (float, True),
    "burst_s": (float, False),
    "charge_refusals": (bool, False),
    "rate_limit_headers": (bool, False),
    "retry_after": (bool, False),
    "error_rate": (float, False),
    "overload_rate": (float, False),
    "drop_rate": (float, False),
    "hang_rate": (float, False),
    "faults": (dict, False),
    "fault_first_n": (int, True),
    "slow_body_s": (float, False),
    "huge_body_bytes": (int, False),
    "tool_rounds": (int, False),
    "prompt_cache_min_tokens": (int, False),
    "api_key": (str, True),
    "seed": (int, False),
}


def check_type(key: str, value: Any, kind: type, optional: bool) -> Any:
    """`value` as a `kind` for the ``mock.KEY`` setting, else a ConfigError saying what
    was expected."""
    if value is None and optional:
        return None
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind in (bool, str, dict) and isinstance(value, kind):
        return value
    expected = {
        float: "a number",
        int: "an integer",
        bool: "true or false",
        str: "a string",
        dict: 'a table such as { "502" = 0.3, reset_mid_body = 0.1 }',
    }
    suffix = " or null" if optional else ""
    raise ConfigError(f"mock.{key} must be {expected[kind]}{suffix}, got {value!r}")
