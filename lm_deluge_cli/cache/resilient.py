"""Keep a run going when its cache fails: every failure becomes a warning and a miss.

A cache only saves money; it must never cost a result. `ResilientCache` wraps any
backend so that a full disk, a corrupt file or a Redis outage degrades a run to
uncached instead of failing it, and picks the cache up again when it comes back.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import shlex
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from lm_deluge_cli.cache.base import (
    Cache,
    CacheStats,
    CorruptEntryError,
    SupportsDelete,
    SupportsGetMany,
    SupportsSetMany,
)
from lm_deluge_cli.cache.damage import is_damage
from lm_deluge_cli.cache.spec import parse_spec
from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.redaction import scrub, url_secrets

__all__ = ["DEFAULT_COOL_OFF_S", "CacheCounters", "ResilientCache", "open_resilient"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# After a failure the cache is left alone this long, then one call tries it again.
# Also the least time between two warnings, so a dead server is not a log flood.
DEFAULT_COOL_OFF_S = 30.0

# Any key will do to check that a freshly opened store answers; it is only read.
_PROBE_KEY = "0" * 64
_MAX_REASON_CHARS = 300


@dataclass(frozen=True, slots=True)
class CacheCounters:
    """A snapshot of a `ResilientCache`'s counters.

    Every `get` is a hit or a miss (a skipped or failed read is a miss). `writes`
    counts stored entries; `errors` counts failed calls and corrupted entries, of
    which `corrupted` is the latter; `skipped` counts calls not sent to the backend
    because it was cooling off after a failure, or never opened. `available` is
    whether the next call would go to the backend.
    """

    hits: int
    misses: int
    writes: int
    errors: int
    corrupted: int
    skipped: int
    available: bool


class _Skip(enum.Enum):
    """The result of a call that did not reach the backend, or failed there."""

    NO_RESULT = enum.auto()


class ResilientCache:
    """Wraps a `Cache` so that no method ever raises (cancellation aside).

    The first failure of any kind logs one warning naming the backend and location,
    then for `cool_off_s` every `get` misses and every `set` is skipped without
    touching the backend. After that, one call (the probe) tries the backend again:
    success logs that it recovered; failure starts another cool-off. At most one
    such warning is logged per cool-off. `inner=None` makes a cache that was never
    opened: every call misses, for good. `secrets` (Redis passwords) are masked in
    warnings. `clock` gives monotonic seconds (tests pass a virtual one).
    """

    def __init__(
        self,
        inner: Cache | None,
        *,
        backend: str | None = None,
        location: str | None = None,
        cool_off_s: float = DEFAULT_COOL_OFF_S,
        clock: Callable[[], float] = time.monotonic,
        secrets: tuple[str, ...] = (),
    ) -> None:
        self.backend = backend or (inner.backend if inner is not None else "none")
        self.location = location or (inner.location if inner is not None else "")
        self.cool_off_s = cool_off_s
        self._inner = inner
        self._clock = clock
        self._secrets = secrets
        # None while healthy; the time the next probe may go out while cooling off.
        self._down_until: float | None = None
        self._probing = False
        self._last_warning: float | None = None
        self._outage_announced = False
        self._hits = self._misses = self._writes = 0
        self._errors = self._corrupted = self._skipped = 0

    def __repr__(self) -> str:
        return f"ResilientCache(backend={self.backend!r}, location={self.location!r})"

    # -- counters ------------------------------------------------------------------

    @property
    def hits(self) -> int:
        return self._hits

    @property
    def misses(self) -> int:
        return self._misses

    @property
    def writes(self) -> int:
        return self._writes

    @property
    def errors(self) -> int:
        return self._errors

    @property
    def available(self) -> bool:
        """Whether the next call would go to the backend."""
        if self._inner is None:
            return False
        return self._down_until is None or (not self._probing and self._clock() >= self._down_until)

    def statistics(self) -> CacheCounters:
        """A frozen snapshot of the counters; reading it changes nothing."""
        return CacheCounters(
            hits=self._hits,
            misses=self._misses,
            writes=self._writes,
            errors=self._errors,
            corrupted=self._corrupted,
            skipped=self._skipped,
            available=self.available,
        )

    # -- the Cache interface -------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        """The stored bytes, or None on a miss, a failure or while cooling off."""
        value = await self._read(key)
        if value is None:
            self._misses += 1
        else:
            self._hits += 1
        return value

    async def get_decoded(self, key: str, decode: Callable[[bytes], T]) -> T | None:
        """`decode` of the stored bytes, or None; an entry `decode` rejects is dropped.

        Any exception from `decode` marks the entry corrupted: it is deleted (when the
        backend can), the first such entry is warned about, and the call misses.
        """
        raw = await self._read(key)
        if raw is None:
            self._misses += 1
            return None
        try:
            value = decode(raw)
        except Exception as exc:
            await self._drop_corrupted(key, exc)
            self._misses += 1
            return None
        self._hits += 1
        return value

    async def get_many_decoded(
        self, keys: Sequence[str], decode: Callable[[bytes], T]
    ) -> list[T | None]:
        """`get_decoded` of each key, in order, read in one go where the backend can
        (`SupportsGetMany`); a failure or a cool-off makes them all misses."""
        if not keys:
            return []

        async def read(inner: Cache) -> list[bytes | CorruptEntryError | None]:
            if isinstance(inner, SupportsGetMany):
                return await inner.get_many(keys)
            found: list[bytes | CorruptEntryError | None] = []
            for key in keys:
                try:
                    found.append(await inner.get(key))
                except CorruptEntryError as exc:
                    found.append(exc)
            return found

        result = await self._attempt("read from", read)
        if result is _Skip.NO_RESULT:
            self._misses += len(keys)
            return [None] * len(keys)
        values: list[T | None] = []
        for key, raw in zip(keys, result, strict=True):
            value: T | None = None
            if isinstance(raw, CorruptEntryError):
                await self._drop_corrupted(key, raw)
            elif raw is not None:
                try:
                    value = decode(raw)
                except Exception as exc:
                    await self._drop_corrupted(key, exc)
            if value is None:
                self._misses += 1
            else:
                self._hits += 1
            values.append(value)
        return values

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        """Store the entry, or skip it on a failure or while cooling off."""

        async def write(inner: Cache) -> bool:
            await inner.set(key, value, ttl_s)
            return True

        if await self._attempt("write to", write) is True:
            self._writes += 1

    async def set_many(
        self, entries: Sequence[tuple[str, bytes]], ttl_s: float | None = None
    ) -> None:
        """Store the entries in one write where the backend can (`SupportsSetMany`), else
        one `set` each; skipped on a failure or while cooling off."""
        if not entries:
            return

        async def write(inner: Cache) -> bool:
            if isinstance(inner, SupportsSetMany):
                await inner.set_many(entries, ttl_s)
            else:
                for key, value in entries:
                    await inner.set(key, value, ttl_s)
            return True

        if await self._attempt("write to", write) is True:
            self._writes += len(entries)

    async def stats(self) -> CacheStats:
        """The backend's stats; unknown counts (None) when it is unavailable."""
        result = await self._attempt("read the stats of", lambda inner: inner.stats())
        if isinstance(result, CacheStats):
            return result
        return CacheStats(self.backend, self.location, None, None)

    async def clear(self) -> int:
        """Entries removed, or -1 when the backend is unavailable."""
        result = await self._attempt("clear", lambda inner: inner.clear())
        return -1 if result is _Skip.NO_RESULT else result

    async def aclose(self) -> None:
        """Close the backend (errors are logged at debug level); later calls miss."""
        inner, self._inner = self._inner, None
        if inner is None:
            return
        try:
            await inner.aclose()
        except Exception as exc:
            logger.debug("closing the %s cache at %s: %s", self.backend, self.location, exc)

    # -- the machinery -------------------------------------------------------------

    async def _read(self, key: str) -> bytes | None:
        async def read(inner: Cache) -> bytes | CorruptEntryError | None:
            try:
                return await inner.get(key)
            except CorruptEntryError as exc:
                # The store answered; only this entry is bad.
                return exc

        result = await self._attempt("read from", read)
        if isinstance(result, CorruptEntryError):
            await self._drop_corrupted(key, result)
            return None
        return None if result is _Skip.NO_RESULT else result

    async def _attempt(self, action: str, call: Callable[[Cache], Awaitable[T]]) -> T | _Skip:
        """Run `call` on the backend if it may be used now; failures become NO_RESULT."""
        inner = self._inner
        if inner is None:
            self._skipped += 1
            return _Skip.NO_RESULT
        probe = False
        if self._down_until is not None:
            # One probe at a time: a thousand tasks must not all wait on a dead server.
            if self._probing or self._clock() < self._down_until:
                self._skipped += 1
                return _Skip.NO_RESULT
            probe = self._probing = True
        try:
            result = await call(inner)
        except Exception as exc:
            self._failed(action, exc, probe=probe)
            return _Skip.NO_RESULT
        finally:
            if probe:
                self._probing = False
        if probe:
            self._recovered()
        return result

    def _failed(self, action: str, exc: Exception, *, probe: bool) -> None:
        self._errors += 1
        if self._down_until is not None and not probe:
            # Sent before the first failure was seen: that one was warned about.
            return
        now = self._clock()
        first = self._last_warning is None
        self._down_until = now + self.cool_off_s
        if probe:
            what = "is still failing"
        elif first:
            what = "failed"
        else:
            what = "failed again"
        announced = self._warn(
            "result cache %s at %s %s (cannot %s it: %s); the run continues without the "
            "cache for the entries it affects, and tries it again in %.0f s",
            self.backend,
            self.location,
            what,
            action,
            _describe(exc, self._secrets),
            self.cool_off_s,
        )
        self._outage_announced = self._outage_announced or announced

    def _recovered(self) -> None:
        self._down_until = None
        if self._outage_announced:
            self._outage_announced = False
            self._warn(
                "result cache %s at %s works again; using it from now on",
                self.backend,
                self.location,
            )

    async def _drop_corrupted(self, key: str, exc: Exception) -> None:
        self._errors += 1
        self._corrupted += 1
        deleted = False
        if isinstance(self._inner, SupportsDelete):
            try:
                deleted = await self._inner.delete(key)
            except Exception as delete_exc:
                logger.debug("cannot delete corrupted cache entry %s: %s", key, delete_exc)
        level = logging.WARNING if self._corrupted == 1 else logging.DEBUG
        logger.log(
            level,
            "result cache %s at %s holds a corrupted entry (%s); %s, and reading it is a "
            "miss (further corrupted entries are logged at debug level)",
            self.backend,
            self.location,
            _describe(exc, self._secrets),
            "it was removed" if deleted else "it could not be removed",
        )

    def _warn(self, message: str, *args: object) -> bool:
        """Log a warning unless one was logged less than a cool-off ago; True if logged."""
        now = self._clock()
        if self._last_warning is not None and now - self._last_warning < self.cool_off_s:
            logger.debug(message, *args)
            return False
        self._last_warning = now
        logger.warning(message, *args)
        return True


async def open_resilient(
    spec: str,
    *,
    namespace: str | None = None,
    cool_off_s: float = DEFAULT_COOL_OFF_S,
    clock: Callable[[], float] = time.monotonic,
) -> ResilientCache:
    """Open the cache `spec` names, wrapped in a `ResilientCache`.

    The store is opened and read once, so an unwritable directory, a file that is not
    a database, or a Redis server that cannot be reached or refuses the password is
    found now: that logs one warning and returns a cache that misses on every call
    for the rest of the run. A malformed spec (and a Redis URL without the redis
    package) still raises ConfigError: that is a mistake to fix, not an outage.
    """
    parsed = parse_spec(spec, namespace=namespace)
    secrets = url_secrets(parsed.target) if parsed.backend == "redis" else ()
    cache: Cache | None = None
    try:
        cache = parsed.open()
        with contextlib.suppress(CorruptEntryError):
            await cache.get(_PROBE_KEY)
    except ConfigError:
        raise
    except Exception as exc:
        unopened = ResilientCache(
            None, backend=parsed.backend, location=parsed.location, secrets=secrets
        )
        logger.warning(
            "cannot open the result cache %s at %s (%s); the run continues without a cache%s",
            parsed.backend,
            parsed.location,
            _describe(exc, secrets),
            _damage_hint(parsed.location) if is_damage(exc) else "",
        )
        if cache is not None:
            try:
                await cache.aclose()
            except Exception as close_exc:
                logger.debug("closing the unusable cache at %s: %s", parsed.location, close_exc)
        return unopened
    return ResilientCache(cache, cool_off_s=cool_off_s, clock=clock, secrets=secrets)


def _damage_hint(location: str) -> str:
    return f" (it is damaged: `lm-deluge cache clear --cache {shlex.quote(location)}` removes it)"


def _describe(exc: BaseException, secrets: tuple[str, ...]) -> str:
    """The exception's type and message for a warning, without secrets, not too long."""
    text = str(exc).strip()
    reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    reason = scrub(reason, secrets)
    if len(reason) > _MAX_REASON_CHARS:
        reason = reason[: _MAX_REASON_CHARS - 1] + "…"
    return reason
