"""Secrets kept out of anything shown: passwords in URLs, API keys in messages, and the
credentials of a request that an HTTP library quotes back. A low module: any layer may use it.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Mapping
from urllib.parse import unquote

__all__ = [
    "MASK",
    "REDACTED",
    "SECRET_HEADERS",
    "credential_forms",
    "redact_keys",
    "redact_url",
    "scrub",
    "url_secrets",
]

# A password in a URL shown back (a cache or limiter location): ``redis://u:***@host``.
MASK = "***"
# A key, or a credential a library quoted, in a message that may reach a user.
REDACTED = "[redacted]"
# Anything shaped like an API key, whether or not it is the key in use.
_KEYLIKE = re.compile(r"\b(sk|pk|rk|key|gsk|xai|AIza)[-_A-Za-z0-9*.]{8,}")
# Request headers that carry credentials; HTTP libraries quote header values in some errors.
SECRET_HEADERS = frozenset(
    {"authorization", "x-api-key", "api-key", "x-goog-api-key", "x-amz-security-token"}
)


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


def scrub(text: str, secrets: Iterable[str], mask: str = MASK) -> str:
    """`text` with every occurrence of each secret replaced by `mask`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, mask)
    return text


def redact_keys(text: str, secret: str | None = None) -> str:
    """`text` without the key `secret`, nor anything shaped like a key."""
    if secret:
        text = text.replace(secret, REDACTED)
    return _KEYLIKE.sub(REDACTED, text)


def credential_forms(headers: Mapping[str, str], url: str) -> tuple[str, ...]:
    """Every credential a request carries (header values, the URL's password and query
    values), raw and as Python would quote them, longest first: to `scrub` from what an
    HTTP library says about the request."""
    forms: set[str] = set()
    for name, value in headers.items():
        if name.lower() not in SECRET_HEADERS:
            continue
        # The whole value and the credential after the scheme, raw and as Python would quote them.
        for part in (value, *value.split(None, 1)[1:]):
            for candidate in (part, part.strip()):
                forms.add(candidate)
                forms.add(repr(candidate)[1:-1])
                forms.add(repr(candidate.encode("utf-8", "backslashreplace"))[2:-1])
    # A base URL can carry credentials too (user:password@host, ?api-key=…).
    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
    except ValueError:  # a malformed URL is what failed: nothing to parse credentials from
        parts, password = None, None
    if password:
        forms.add(password)
    if parts is not None:
        for _, value in urllib.parse.parse_qsl(parts.query):
            forms.add(value)
    return tuple(sorted((f for f in forms if len(f) >= 4), key=len, reverse=True))


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
