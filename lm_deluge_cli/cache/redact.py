"""Keep Redis passwords out of anything shown: locations, reprs, warnings."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote

__all__ = ["MASK", "redact_url", "scrub", "url_secrets"]

MASK = "***"


def redact_url(url: str) -> str:
    """`url` with the password in its user info and any ``password=`` query value masked.

    ``redis://alice:s3cret@host:6379/0`` → ``redis://alice:***@host:6379/0``. The user
    info runs to the *last* ``@``, so a password holding an unescaped ``@``, ``/``,
    ``?`` or ``#`` is masked whole (a general URL parser would split it and show a part).
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    userinfo, at, after = _split_userinfo(rest)
    if at:
        user, colon, _ = userinfo.partition(":")
        if colon:
            rest = f"{user}:{MASK}@{after}"
    head, question, query = rest.partition("?")
    if question:
        query, hash_sign, fragment = query.partition("#")
        rest = f"{head}?{_mask_query(query)}{hash_sign}{fragment}"
    return f"{scheme}{sep}{rest}"


def url_secrets(url: str) -> tuple[str, ...]:
    """The passwords in `url`, as written and percent-decoded, to `scrub` from messages."""
    _, sep, rest = url.partition("://")
    if not sep:
        return ()
    found: list[str] = []
    userinfo, at, after = _split_userinfo(rest)
    if at and ":" in userinfo:
        found.append(userinfo.partition(":")[2])
    query = after.partition("?")[2].partition("#")[0]
    for segment in query.split("&"):
        name, eq, value = segment.partition("=")
        if name == "password" and eq:
            found.append(value)
    secrets = {s for raw in found for s in (raw, unquote(raw)) if s}
    # Longest first, so a password containing another is masked whole.
    return tuple(sorted(secrets, key=len, reverse=True))


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each secret replaced by the mask."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def _split_userinfo(rest: str) -> tuple[str, str, str]:
    """(user info, "@", the rest) of what follows ``scheme://``; ("", "", rest) without one."""
    userinfo, at, after = rest.rpartition("@")
    return (userinfo, at, after) if at else ("", "", rest)


def _mask_query(query: str) -> str:
    segments = []
    for segment in query.split("&"):
        name, eq, _ = segment.partition("=")
        segments.append(f"{name}={MASK}" if name == "password" and eq else segment)
    return "&".join(segments)
