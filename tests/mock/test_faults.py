"""The mock's fault knob: validation, the draws, what each fault sends, in every format."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import pytest

from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.mock.faults import check_faults, fault_status
from lm_deluge_cli.mock.formats import FORMATS, OPENAI_RESPONSES
from lm_deluge_cli.mock.formats.base import WireFormat
from lm_deluge_cli.mock.simulator import MockSettings, SimResponse, Simulator
from lm_deluge_cli.mock.wire import mock_completion

MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "Hello"}]


def make(**settings: Any) -> Simulator:
    return Simulator(MockSettings(**settings))


def send(sim: Simulator) -> SimResponse:
    body = orjson.dumps({"model": MODEL, "messages": MESSAGES})
    return sim.handle_openai_chat({}, body)


# --- the knob ------------------------------------------------------------------------------


def test_faults_are_statuses_or_named_breakages() -> None:
    faults = {"502": 0.25, 408: 0.25, "reset_mid_body": 0.1, "huge_body": 0}
    assert check_faults(faults) == {"502": 0.25, "408": 0.25, "reset_mid_body": 0.1, "huge_body": 0}
    assert (fault_status("502"), fault_status("html")) == (502, None)


@pytest.mark.parametrize(
    ("faults", "says"),
    [
        ({"teapot": 0.1}, "mock.faults: unknown fault 'teapot'; use an HTTP status from 400"),
        ({"302": 0.1}, "mock.faults: status 302 is not an error status"),
        ({"600": 0.1}, "status 600 is not an error status"),
        ({"502": 1.5}, "mock.faults.502 must be between 0 and 1, got 1.5"),
        ({"502": -0.1}, "mock.faults.502 must be between 0 and 1"),
        ({"502": "half"}, "mock.faults.502 must be a number between 0 and 1, got 'half'"),
        ({"502": True}, "mock.faults.502 must be a number"),
        ({"502": float("nan")}, "mock.faults.502 must be between 0 and 1"),
        ({"502": 0.1, 502: 0.2}, "fault '502' is given twice"),
        (["502"], "mock.faults must be a table of fault = rate"),
    ],
)
def test_bad_faults_are_named(faults: Any, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        MockSettings(faults=faults)
    assert says in str(caught.value)


def test_the_rates_together_must_not_exceed_one() -> None:
    with pytest.raises(ConfigError, match=r"must not exceed 1 \(they add up to 1.2\)"):
        MockSettings(error_rate=0.5, faults={"502": 0.4, "html": 0.3})
    MockSettings(error_rate=0.5, faults={"502": 0.25, "html": 0.25})


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"fault_first_n": -1}, "mock.fault_first_n must be a whole number >= 0"),
        ({"huge_body_bytes": -5}, "mock.huge_body_bytes"),
        ({"slow_body_s": -1.0}, "mock.slow_body_s"),
        ({"slow_body_s": float("inf")}, "mock.slow_body_s"),
    ],
)
def test_the_fault_settings_are_checked(fields: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        MockSettings(**fields)


def test_a_job_files_mock_table_takes_faults() -> None:
    settings = MockSettings.from_mapping(
        {"faults": {"503": 0.5}, "fault_first_n": 10, "slow_body_s": 2, "huge_body_bytes": 1000}
    )
    assert dict(settings.faults) == {"503": 0.5}
    assert (settings.fault_first_n, settings.slow_body_s) == (10, 2.0)
    with pytest.raises(ConfigError, match=r"mock.faults must be a table such as"):
        MockSettings.from_mapping({"faults": 0.5})
    with pytest.raises(ConfigError, match=r"mock.fault_first_n must be an integer or null"):
        MockSettings.from_mapping({"fault_first_n": 2.5})


def test_the_settings_cannot_be_changed_through_their_faults() -> None:
    given = {"502": 0.5}
    settings = MockSettings(faults=given)
    given["502"] = 1.0
    assert settings.faults["502"] == 0.5
    with pytest.raises(TypeError):
        settings.faults["502"] = 1.0  # type: ignore[index]


# --- the draws -----------------------------------------------------------------------------


def test_faults_are_drawn_at_their_rates_and_follow_the_seed() -> None:
    def outcomes(seed: int) -> list[int]:
        sim = make(faults={"502": 0.2, "503": 0.1, "408": 0.1}, seed=seed)
        return [send(sim).status for _ in range(2000)]

    first = outcomes(3)
    assert first == outcomes(3)
    counts = Counter(first)
    assert 0.16 < counts[502] / 2000 < 0.24
    assert 0.07 < counts[503] / 2000 < 0.13
    assert 0.07 < counts[408] / 2000 < 0.13
    assert counts[200] == 2000 - counts[502] - counts[503] - counts[408]


def test_only_the_first_n_admitted_requests_can_fail() -> None:
    sim = make(faults={"500": 1.0}, error_rate=0.0, fault_first_n=3, requests_per_minute=60)
    # The rate limit's refusals are not admitted, so they use none of the three.
    statuses = [send(sim).status for _ in range(3)]
    assert statuses == [500, 429, 429]
    sim = make(faults={"500": 1.0}, fault_first_n=3)
    assert [send(sim).status for _ in range(5)] == [500, 500, 500, 200, 200]
    sim = make(drop_rate=1.0, fault_first_n=1)
    assert [send(sim).action for _ in range(2)] == ["drop", "respond"]


def test_what_each_fault_counts_as() -> None:
    sim = make(faults={"502": 1.0})
    send(sim)
    sim2 = make(faults={"429": 1.0})
    send(sim2)
    sim3 = make(faults={"truncated_json": 1.0})
    send(sim3)
    sim4 = make(faults={"slow_body": 1.0})
    send(sim4)
    assert (sim.statistics().errors, sim2.statistics().rate_limited) == (1, 1)
    assert (sim3.statistics().malformed, sim3.statistics().tokens_out) == (1, 0)
    assert (sim4.statistics().ok, sim4.statistics().malformed) == (1, 0)


# --- what each fault sends -----------------------------------------------------------------


def test_an_injected_429_says_how_long_to_wait_unless_told_not_to() -> None:
    response = send(make(faults={"429": 1.0}))
    assert response.status == 429
    assert response.headers["retry-after-ms"] == "500"
    assert orjson.loads(response.body)["error"]["code"] == "rate_limit_exceeded"
    quiet = send(make(faults={"429": 1.0}, retry_after=False))
    assert quiet.status == 429
    assert "retry-after" not in quiet.headers and "retry-after-ms" not in quiet.headers


def test_reset_and_slow_bodies_are_actions_for_the_server() -> None:
    reset = send(make(faults={"reset_mid_body": 1.0}))
    assert (reset.action, reset.status) == ("reset", 200)
    text = orjson.loads(reset.body)["choices"][0]["message"]["content"]
    assert text == mock_completion(MESSAGES, MODEL)  # the server cuts it, not the simulator
    slow = send(make(faults={"slow_body": 1.0}, slow_body_s=2.5, latency_s=0.1))
    assert (slow.action, slow.delay_s, slow.body_s) == ("respond", 0.1, 2.5)


def test_broken_200_bodies() -> None:
    truncated = send(make(faults={"truncated_json": 1.0}))
    assert truncated.status == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(truncated.body)
    assert truncated.body.startswith(b'{"id":"chatcmpl-')
    page = send(make(faults={"html": 1.0}))
    assert (page.status, page.headers["content-type"]) == (200, "text/html")
    assert page.body.startswith(b"<html>")
    missing = orjson.loads(send(make(faults={"missing_fields": 1.0})).body)
    assert "choices" not in missing and missing["object"] == "chat.completion"


def test_a_huge_body_pads_the_answer_to_its_size() -> None:
    response = send(make(faults={"huge_body": 1.0}, huge_body_bytes=100_000))
    text = orjson.loads(response.body)["choices"][0]["message"]["content"]
    assert len(text.encode()) == 100_000
    assert text.startswith(mock_completion(MESSAGES, MODEL) + " ")
    assert orjson.loads(response.body)["usage"]["completion_tokens"] == 25_000


ALL_FORMATS: list[WireFormat] = [*FORMATS.values(), OPENAI_RESPONSES]


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=lambda f: f.name)
@pytest.mark.parametrize("status", [400, 408, 409, 500, 502, 503, 504, 529])
def test_every_format_answers_every_error_status(fmt: WireFormat, status: int) -> None:
    answer = fmt.status_failure(status)
    assert answer.status == status
    if answer.headers["content-type"] == "text/html":
        assert answer.body.startswith(b"<html>")
    else:
        assert isinstance(orjson.loads(answer.body), dict)


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=lambda f: f.name)
def test_every_format_names_the_fields_that_carry_its_answer(fmt: WireFormat) -> None:
    assert fmt.answer_fields


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=lambda f: f.name)
def test_an_injected_500_is_the_formats_documented_internal_error(fmt: WireFormat) -> None:
    injected, documented = fmt.status_failure(500), fmt.failure("server_error")
    assert injected.status == documented.status == 500
    body, expected = orjson.loads(injected.body), orjson.loads(documented.body)
    for payload in (body, expected):
        payload.pop("id", None)  # Cohere's ids are random
    assert body == expected
