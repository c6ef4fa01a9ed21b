"""Redis URLs lose their passwords before they are shown; messages lose them too."""

from __future__ import annotations

import pytest

from lm_deluge_cli.cache.redact import redact_url, scrub, url_secrets


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
