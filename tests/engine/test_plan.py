"""The dry-run plan: requests spread by weight, pins honoured, tokens and cost per model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from lm_deluge_cli.cache.key import content_digest
from lm_deluge_cli.config import Job, JobOverrides, Limits, ModelEntry, load_job
from lm_deluge_cli.conversation import Message
from lm_deluge_cli.engine.choice import content_draw, weighted_index
from lm_deluge_cli.engine.plan import plan_job
from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.io.parse import BadLine
from lm_deluge_cli.providers.registry import load_registry
from lm_deluge_cli.tokens import estimate_message_tokens
from lm_deluge_cli.types import Prompt, SamplingParams


def job(*models: ModelEntry, output: str = "", max_cost: float | None = None) -> Job:
    return Job(
        input="in.jsonl",
        output=output,
        models=models,
        limits=Limits(max_cost=max_cost),
        sampling=SamplingParams(max_new_tokens=100),
    )


def prompts(count: int, model: str | None = None) -> Iterator[Prompt]:
    for i in range(count):
        yield Prompt(id=i, line=i + 1, messages=[{"role": "user", "content": f"q{i}"}], model=model)


def test_models_are_chosen_as_the_run_chooses_them() -> None:
    items = list(prompts(400))
    report = plan_job(
        job(ModelEntry("mock:fast", weight=3), ModelEntry("mock:standard")), items=iter(items)
    )
    # The run's rule: the model follows from the line's content, in proportion to weight.
    expected = [0, 0]
    for item in items:
        expected[weighted_index([3, 1], content_draw(content_digest(item.messages)))] += 1
    assert [m.requests for m in report.models] == expected
    assert 260 <= expected[0] <= 340


def test_identical_lines_are_one_request() -> None:
    items = [
        Prompt(id=i, line=i + 1, messages=[{"role": "user", "content": f"q{i % 3}"}])
        for i in range(30)
    ]
    report = plan_job(job(ModelEntry("mock:fast")), items=iter(items))
    assert (report.requests, report.identical) == (3, 27)
    assert report.to_dict()["identical_lines"] == 27
    # Another sampling on the line is another request.
    items.append(
        Prompt(
            id=99, line=31, messages=[{"role": "user", "content": "q0"}], sampling={"top_p": 0.5}
        )
    )
    assert plan_job(job(ModelEntry("mock:fast")), items=iter(items)).requests == 4


def test_requests_tokens_and_cost_per_model() -> None:
    report = plan_job(
        job(ModelEntry("mock:fast", weight=3), ModelEntry("mock:standard")),
        items=prompts(8),
    )
    fast, standard = report.models
    assert fast.requests + standard.requests == 8 and fast.requests > 0
    per_prompt = estimate_message_tokens([{"role": "user", "content": "q0"}])
    assert report.input_tokens == 8 * per_prompt
    assert (fast.max_output_tokens, standard.max_output_tokens) == (
        100 * fast.requests,
        100 * standard.requests,
    )
    info = load_registry().lookup("mock:fast")
    assert info.input_per_mtok is not None and info.output_per_mtok is not None
    output = fast.max_output_tokens
    expected = (fast.input_tokens * info.input_per_mtok + output * info.output_per_mtok) / 1e6
    assert fast.cost_usd == pytest.approx(expected)
    assert report.requests == 8
    assert report.to_dict()["total"] == {
        "requests": 8,
        "input_tokens": 8 * per_prompt,
        "max_output_tokens": 800,
        "estimated_cost_usd": round(report.cost_usd, 6),
    }


def test_pins_go_to_their_model_and_unknown_pins_are_bad_lines() -> None:
    items: list[Prompt | BadLine] = [
        *prompts(4, model="standard"),  # the wire id pins as in a run
        Prompt(id="x", line=5, messages=[{"role": "user", "content": "q"}], model="nope"),
        BadLine(6, "line 6: not valid JSON"),
    ]
    report = plan_job(
        job(ModelEntry("mock:fast", weight=100), ModelEntry("mock:standard")), items=items
    )
    assert [m.requests for m in report.models] == [0, 4]
    assert report.lines == 6
    assert report.bad_lines == 2
    assert "model 'nope' is not one of this job's models" in report.bad_line_examples[0]
    assert report.bad_line_examples[1] == "line 6: not valid JSON"


def test_line_sampling_overrides_max_new_tokens() -> None:
    item = Prompt(
        id=1, line=1, messages=[{"role": "user", "content": "q"}], sampling={"max_new_tokens": 7}
    )
    entry = ModelEntry("mock:fast", sampling={"max_new_tokens": 50})
    report = plan_job(job(entry), items=[item, *prompts(1)])
    assert report.models[0].max_output_tokens == 7 + 50


def test_unpriced_models_are_named_and_left_out_of_the_total() -> None:
    report = plan_job(job(ModelEntry("mock:fast"), ModelEntry("openai:mystery")), items=prompts(4))
    assert report.unpriced == ["openai:mystery"]
    assert report.models[1].cost_usd is None
    assert report.cost_usd == pytest.approx(report.models[0].cost_usd or 0.0)


def test_prompts_done_in_the_output_are_skipped(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    done = {"id": 0, "line": 1, "status": "ok", "completion": "a", "cost_usd": 0.1}
    failed = {"id": 1, "line": 2, "status": "error", "error": {"type": "x"}}
    out.write_text(json.dumps(done) + "\n" + json.dumps(failed) + "\n")
    before = out.read_bytes()
    report = plan_job(job(ModelEntry("mock:fast"), output=str(out)), items=prompts(3))
    assert report.already_done == 1
    assert report.requests == 2  # the failed one is retried
    assert out.read_bytes() == before
    fresh = plan_job(
        job(ModelEntry("mock:fast"), output=str(out)), items=prompts(3), skip_done=False
    )
    assert (fresh.already_done, fresh.requests) == (0, 3)


def test_reads_the_input_file_and_needs_no_keys(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text('{"prompt": "a"}\n\n{"prompt": "b"}\nnot json\n')
    report = plan_job(job(ModelEntry("openai:gpt-4.1-mini")))
    assert report.requests == 2
    assert report.lines == 3
    assert report.bad_lines == 1


def test_unknown_provider_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="nope"):
        plan_job(job(ModelEntry("nope:x")), items=[])


def test_thinking_budgets_count_as_output() -> None:
    entry = ModelEntry(
        "anthropic:claude-sonnet-4-6",
        sampling={"max_new_tokens": 100, "reasoning_effort": "low"},
    )
    report = plan_job(job(entry), items=prompts(2))
    assert report.models[0].max_output_tokens == 2 * (100 + 1024)


def test_pdfs_are_counted_by_the_rule_of_the_model_s_provider() -> None:
    pdf = b"%PDF-1.4\n" + b"1 0 obj << /Type /Page >> endobj\n" * 3 + b"%%EOF\n"
    messages = Message.user("Summarise").add_file(pdf, filename="r.pdf").to_openai()
    totals = {}
    for name in ("gemini:gemini-2.5-flash", "anthropic:claude-haiku-4-5-20251001"):
        items = iter([Prompt(id=0, line=1, messages=messages)])
        report = plan_job(job(ModelEntry(name)), items=items)
        wire = "gemini" if name.startswith("gemini") else "anthropic_messages"
        assert report.input_tokens == estimate_message_tokens(messages, provider=wire)
        totals[name] = report.input_tokens
    assert len(set(totals.values())) == 2  # three pages: 560 each for Gemini, more for Claude


def test_samples_count_their_requests_and_output(tmp_path: Path) -> None:
    lines = [{"id": "a", "prompt": "Name a colour.", "samples": 3}]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    for model, requests in (("openai:gpt-4.1-mini", 1), ("anthropic:claude-sonnet-4-5", 3)):
        job = load_job(
            None, JobOverrides(input=str(source), output="", models=[model]), need_output=False
        )
        (plan,) = plan_job(job).models
        assert plan.requests == requests
        assert plan.max_output_tokens == 3 * job.sampling.max_new_tokens


def test_answers_longer_than_every_context_window_are_refused_as_the_run_refuses_them() -> None:
    # 600 million output tokens at gpt-4o's price were estimated at $6,000 for six lines.
    huge = Job(
        input="in.jsonl",
        output="",
        models=(ModelEntry("openai:gpt-4o"),),
        sampling=SamplingParams(max_new_tokens=100_000_000),
    )
    with pytest.raises(ConfigError, match="context window, prompt and answer together, is 128,000"):
        plan_job(huge, items=prompts(6))


def test_lines_the_run_would_refuse_are_bad_lines_and_others_move_as_in_the_run() -> None:
    def line(number: int, tokens: int, model: str | None = None, **sampling: int) -> Prompt:
        messages = [{"role": "user", "content": "abcd" * tokens}]
        return Prompt(id=number, line=number, messages=messages, model=model, sampling=sampling)

    small, large = ModelEntry("openai:gpt-4o", weight=1000), ModelEntry("openai:gpt-4.1-mini")
    limited = Job(
        input="in.jsonl",
        output="",
        models=(small, large),
        limits=Limits(max_tokens_per_minute=200_000.0),
        sampling=SamplingParams(max_new_tokens=100),
    )
    items = [
        line(1, 150_000),  # over gpt-4o's window: goes to gpt-4.1-mini
        line(2, 150_000, model="openai:gpt-4o"),  # pinned there: refused
        line(3, 250_000),  # over the run's 200,000 tokens/min: refused
        line(4, 10, max_new_tokens=150_000),  # longer than gpt-4o can answer: moves
        line(5, 10),
    ]
    report = plan_job(limited, items=iter(items))
    assert [m.requests for m in report.models] == [1, 2]
    assert report.bad_lines == 2
    pinned, too_big = report.bad_line_examples
    assert pinned.startswith("line 2: not sent: the prompt is ~150,")
    assert "context window of 128,000" in pinned
    # Too big for both, each for its own reason.
    assert too_big.startswith("line 3: not sent: it fits none of the job's models: ")
    assert "on openai:gpt-4o, the prompt is ~250,007 tokens" in too_big
    assert "on openai:gpt-4.1-mini, the request needs ~250,107 tokens" in too_big
    assert "the run's limit of 200,000 tokens/min" in too_big
