"""Secrets out of what is shown: URL passwords, keys in messages, a request's credentials."""

from __future__ import annotations

import pytest

from lm_deluge_cli.redaction import credential_forms, redact_keys, redact_url, scrub, url_secrets


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("redis://:s3cret@localhost:6379/0", "redis://:***@localhost:6379/0"),
        ("redis://alice:s3cret@localhost/0", "redis://alice:***@localhost/0"),
        ("rediss://alice:p%40ss%3Aw@host:6380", "rediss://alice:***@host:6380"),
        # A password may hold an @; the host is after the last one.
        ("redis://alice:p@ss@host:6379", "redis://alice:***@host:6379"),
        ("redis://alice@host:6379", "redis://alice@host:6379"),
        ("unix:///run/redis.sock?db=1", "unix:///run/redis.sock?db=1"),
        (
            "unix://alice@/run/redis.sock?db=1&password=s3cret",
            "unix://alice@/run/redis.sock?db=1&password=***",
        ),
        ("redis://host/0?password=s3cret&x=1", "redis://host/0?password=***&x=1"),
        # Unescaped delimiters in a password: masked whole, not split.
        ("redis://u:pa/ss?w#rd@host:6379/0", "redis://u:***@host:6379/0"),
        ("not a url", "not a url"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    ("url", "secrets"),
    [
        ("redis://localhost/0", ()),
        ("redis://:s3cret@localhost/0", ("s3cret",)),
        ("redis://alice:p%40ss@host", ("p%40ss", "p@ss")),
        ("unix:///s.sock?password=a%2Fb", ("a%2Fb", "a/b")),
        ("unix://u@/s.sock?db=0&password=x#frag", ("x",)),
        ("redis://u:pa/ss?w#rd@host", ("pa/ss?w#rd",)),
    ],
)
def test_url_secrets_include_the_decoded_form(url: str, secrets: tuple[str, ...]) -> None:
    assert set(url_secrets(url)) == set(secrets)


def test_scrub_masks_every_occurrence_longest_first() -> None:
    secrets = url_secrets("redis://u:ab%2Fcd@h")
    text = "auth ab%2Fcd failed; ab/cd is wrong; again ab/cd"
    assert scrub(text, secrets) == "auth *** failed; *** is wrong; again ***"


# The suite's canary key (the same value as the shared conftest's CANARY_KEY).
KEY = "sk-canary-7f3a9c1e5b2d4f6a8c0e"
# A key with no recognisable shape: only the exact-secret replacement can catch it.
PLAIN_SECRET = "hunter2-local-secret-0123456789"


@pytest.mark.parametrize(
    ("text", "secret", "expected"),
    [
        ("nothing to hide", None, "nothing to hide"),
        (f"bad key {KEY}.", None, "bad key [redacted]"),
        (f"bad key {KEY}", KEY, "bad key [redacted]"),
        (f"a {PLAIN_SECRET} b", PLAIN_SECRET, "a [redacted] b"),
        (f"a {PLAIN_SECRET} b", None, f"a {PLAIN_SECRET} b"),
        # OpenAI's own masked echo of a key.
        (
            "Incorrect API key provided: sk-proj-****************MxYA. You can find",
            None,
            "Incorrect API key provided: [redacted] You can find",
        ),
        ("gsk_abcdefghijklmnop and AIzaSyA-abcdefgh12", None, "[redacted] and [redacted]"),
        # Too short to be a key, and words that merely start like one, stay.
        ("sk-short", None, "sk-short"),
        ("a skeleton key", None, "a skeleton key"),
        ("", KEY, ""),
        ("no secret given", "", "no secret given"),
    ],
)
def test_redact_keys(text: str, secret: str | None, expected: str) -> None:
    assert redact_keys(text, secret) == expected


def test_credential_forms_are_the_secret_headers_and_url_credentials_longest_first() -> None:
    forms = credential_forms(
        {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        "https://user:p4ssw0rd@host/v1?api-key=q-secret-1",
    )
    assert f"Bearer {KEY}" in forms and KEY in forms
    assert {"p4ssw0rd", "q-secret-1"} <= set(forms)
    assert "application/json" not in forms
    assert list(forms) == sorted(forms, key=len, reverse=True)
    assert scrub(f"Illegal header value b'Bearer {KEY}'", forms, "[redacted]") == (
        "Illegal header value b'[redacted]'"
    )
