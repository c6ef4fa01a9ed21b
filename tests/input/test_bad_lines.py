"""Generated input files mixing valid and broken lines: every non-blank line ends as exactly
one record, broken ones carry their line number and a reason, and the exit code says so."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lm_deluge_cli.errors import EXIT_OK, EXIT_SOME_FAILED
from tests.input.conftest import Ran, run_bytes

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Line:
    """One generated line: its bytes, and whether the run should answer it."""

    raw: bytes
    good: bool
    # The explicit id the line claims, if it claims one that later lines may repeat.
    claims: str | None = None

    @property
    def blank(self) -> bool:
        return not self.raw.strip()


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


texts = st.text(
    st.characters(exclude_categories=["Cs"]),  # JSON strings cannot hold lone surrogates
    min_size=1,
    max_size=40,
)

# (field, a wrong value for it): every one of these makes a line invalid.
not_a_string = st.one_of(
    st.integers(), st.booleans(), st.none(), st.lists(st.integers(), max_size=2)
)
not_a_number: st.SearchStrategy[object] = st.one_of(
    texts, st.lists(st.integers(), max_size=2), st.just({})
)
wrong_types = st.one_of(
    st.tuples(st.just("prompt"), st.one_of(not_a_string, st.just(""))),
    st.tuples(st.just("messages"), st.one_of(texts, st.integers(), st.just({}))),
    st.tuples(st.just("id"), st.one_of(st.floats(allow_nan=False), st.booleans(), st.just([1]))),
    st.tuples(st.just("system"), st.one_of(st.integers(), st.booleans(), st.just([]))),
    st.tuples(st.just("model"), st.one_of(st.integers(), st.just(""), st.just([]))),
    st.tuples(st.just("temperature"), not_a_number),
    st.tuples(st.just("max_new_tokens"), not_a_number),
)
broken_messages = st.sampled_from(
    [
        [],
        [{"role": "user", "content": []}],
        [{"role": "user"}],
        [{"role": "wizard", "content": "hi"}],
        [{"content": "hi"}],
        ["hi"],
        [{"role": "user", "content": [{"text": "no type"}]}],
        [{"role": "tool", "content": "no tool_call_id"}],
    ]
)
missing_fields = st.sampled_from(
    [{}, {"id": "lonely"}, {"metadata": {"a": 1}}, {"system": "only a system prompt"}]
)
not_json = st.one_of(
    st.sampled_from([b"{", b'{"prompt": "unterminated', b"{'prompt': 'single'}", b"nope", b"]"]),
    # Raw text on one line: a newline inside would make it two lines of the file.
    texts.map(lambda t: b'{"prompt": ' + t.replace("\n", " ").replace("\r", " ").encode()),
)
not_an_object = st.sampled_from([b"1", b'"a string"', b"[]", b"null", b"true"])
invalid_utf8 = st.sampled_from([b"\xff\xfe", b'{"prompt": "caf\xe9"}', b"\xc3", b"\x80abc"])
blank = st.sampled_from([b"", b"   ", b"\t"])


@st.composite
def line_kinds(draw: st.DrawFn, index: int) -> Callable[[list[Line]], Line]:
    """A function of the lines before it (a duplicate needs an earlier id) making line `index`."""
    kind = draw(
        st.sampled_from(
            [
                "good",
                "good_no_id",
                "good_messages",
                "wrong_type",
                "missing",
                "empty_messages",
                "not_json",
                "not_object",
                "utf8",
                "duplicate",
                "blank",
            ]
        )
    )
    text = draw(texts)
    wrong = draw(wrong_types)
    broken = draw(broken_messages)
    missing = draw(missing_fields)
    garbage = draw(not_json)
    scalar = draw(not_an_object)
    bad_bytes = draw(invalid_utf8)
    space = draw(blank)
    pick = draw(st.integers(min_value=0, max_value=1 << 16))

    def make(before: list[Line]) -> Line:
        own = f"g{index}"
        if kind == "good":
            return Line(dumps({"id": own, "prompt": text}), True, own)
        if kind == "good_no_id":
            return Line(dumps({"prompt": text, "metadata": {"n": index}}), True)
        if kind == "good_messages":
            messages = [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": text},
            ]
            return Line(dumps({"id": own, "messages": messages}), True, own)
        if kind == "wrong_type":
            field, value = wrong
            row: dict[str, Any] = {"prompt": text, field: value}
            if field != "id":
                row["id"] = f"b{index}"
            return Line(dumps(row), False, row.get("id") if field != "id" else None)
        if kind == "missing":
            return Line(dumps(missing), False)
        if kind == "empty_messages":
            return Line(dumps({"messages": broken}), False)
        if kind == "not_json":
            return Line(garbage, False)
        if kind == "not_object":
            return Line(scalar, False)
        if kind == "utf8":
            return Line(bad_bytes, False)
        if kind == "duplicate":
            claimed = [line.claims for line in before if line.claims is not None]
            if not claimed:
                return Line(dumps({"id": own, "prompt": text}), True, own)
            return Line(dumps({"id": claimed[pick % len(claimed)], "prompt": text}), False)
        return Line(space, False)

    return make


@st.composite
def input_files(draw: st.DrawFn) -> tuple[bytes, list[Line]]:
    """An input file's bytes and its lines, with CRLF, a BOM or no final newline at times."""
    count = draw(st.integers(min_value=1, max_value=12))
    lines: list[Line] = []
    for index in range(count):
        lines.append(draw(line_kinds(index))(lines))
    newline = draw(st.sampled_from([b"\n", b"\r\n"]))
    data = b"".join(line.raw + newline for line in lines)
    if draw(st.booleans()):
        data = data[: -len(newline)]  # no final newline
    if draw(st.booleans()):
        data = BOM + data
    return data, lines


def check_run(ran: Ran, lines: list[Line]) -> None:
    expected = {n: line for n, line in enumerate(lines, start=1) if not line.blank}
    per_line = Counter(record["line"] for record in ran.records)
    assert per_line == Counter(expected.keys()), "every non-blank line gets exactly one record"
    for record in ran.records:
        line = expected[record["line"]]
        if line.good:
            assert record["status"] == "ok", record
        else:
            assert record["status"] == "error", record
            assert record["error"]["type"] == "invalid_input"
            message = record["error"]["message"]
            assert message.startswith(f"line {record['line']}: "), message
            assert len(message) > len(f"line {record['line']}: ") + 5, "a reason follows"
    any_bad = any(not line.good for line in expected.values())
    assert ran.exit_code == (EXIT_SOME_FAILED if any_bad else EXIT_OK)


@SETTINGS
@given(input_files())
def test_every_line_ends_as_exactly_one_record(generated: tuple[bytes, list[Line]]) -> None:
    data, lines = generated
    check_run(run_bytes(data), lines)


@SETTINGS
@given(st.lists(texts, min_size=1, max_size=8), st.sampled_from([b"\n", b"\r\n"]), st.booleans())
def test_valid_files_exit_0_whatever_their_line_endings(
    prompts: list[str], newline: bytes, bom: bool
) -> None:
    lines = [Line(dumps({"id": f"p{i}", "prompt": p}), True) for i, p in enumerate(prompts)]
    data = (BOM if bom else b"") + newline.join(line.raw for line in lines)
    check_run(run_bytes(data), lines)


def test_a_bom_on_the_first_line_is_not_part_of_it() -> None:
    lines = [Line(dumps({"id": "a", "prompt": "hi"}), True)]
    ran = run_bytes(BOM + lines[0].raw + b"\r\n")
    check_run(ran, lines)
    assert ran.records[0]["id"] == "a"


def test_a_bad_line_record_names_the_problem() -> None:
    data = b"\n".join(
        [
            dumps({"id": "a", "prompt": "hi"}),
            b"\xff\xfe",
            dumps({"id": "a", "prompt": "again"}),
            dumps({"id": "c", "prompt": 5}),
            b'{"prompt": ',
        ]
    )
    ran = run_bytes(data)
    by_line = {record["line"]: record for record in ran.records}
    assert "not valid UTF-8" in by_line[2]["error"]["message"]
    assert "duplicate id" in by_line[3]["error"]["message"]
    assert "'prompt' must be a non-empty string" in by_line[4]["error"]["message"]
    assert "not valid JSON" in by_line[5]["error"]["message"]
    # A duplicate's record never claims the id: it would shadow the first line's answer.
    assert by_line[3]["id"] is None
    assert by_line[4]["id"] == "c"
    assert ran.exit_code == EXIT_SOME_FAILED
