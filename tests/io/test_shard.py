"""--shard K/N: every line in exactly one part, the same parts on every machine."""

from __future__ import annotations

from collections import Counter

import pytest

from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.io.parse import BadLine
from lm_deluge_cli.io.shard import Shard, parse_shard
from lm_deluge_cli.types import Prompt


def prompt(i: int | str) -> Prompt:
    return Prompt(id=i, line=1, messages=[])


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_the_parts_cover_every_id_exactly_once(count: int) -> None:
    shards = [Shard(k, count) for k in range(count)]
    owners: Counter[int] = Counter()
    for i in range(3000):
        owned = [s.index for s in shards if s.owns(prompt(f"row-{i}"))]
        assert len(owned) == 1
        owners[owned[0]] += 1
    # Balanced: each part within 15% of its fair share.
    assert all(abs(n - 3000 / count) < 0.15 * 3000 / count for n in owners.values())


def test_the_split_is_fixed_by_the_id_alone() -> None:
    # Pinned: a change would send ids to other machines mid-job.
    assert [Shard(0, 2).owns(prompt(i)) for i in range(8)] == [
        Shard(0, 2).owns(Prompt(id=i, line=99, messages=[{"role": "user", "content": "x"}]))
        for i in range(8)
    ]
    assert [k for k in range(4) if Shard(k, 4).owns(prompt("abc"))] == [3]


def test_lines_without_an_id_go_by_line_number() -> None:
    shards = [Shard(k, 3) for k in range(3)]
    for line in range(1, 50):
        bad = BadLine(line, f"line {line}: not JSON")
        assert sum(s.owns(bad) for s in shards) == 1


@pytest.mark.parametrize(
    ("text", "expected"), [("0/2", Shard(0, 2)), (" 3 / 4 ", Shard(3, 4)), ("0/1", Shard(0, 1))]
)
def test_parse(text: str, expected: Shard) -> None:
    assert parse_shard(text) == expected
    assert str(expected) == f"{expected.index}/{expected.count}"


@pytest.mark.parametrize("text", ["2/2", "1/0", "-1/2", "1", "a/b", "1/2/3", ""])
def test_bad_shards_say_what_is_expected(text: str) -> None:
    with pytest.raises(ConfigError, match="--shard"):
        parse_shard(text)


@pytest.mark.parametrize(("index", "count"), [(2, 2), (0, 0), (-1, 3)])
def test_a_shard_outside_its_count_is_refused_however_made(index: int, count: int) -> None:
    with pytest.raises(ConfigError, match=rf"^shard {index}/{count}: K counts from 0"):
        Shard(index, count)
