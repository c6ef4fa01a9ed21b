"""`translate`: texts → the target language (English by default). Texts the offline
detector (`detect.py`) finds already in that language pass through with no request: an
ok record whose translation is the text itself, counted in ``stats.passed_through``."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from lm_deluge_cli.client import LLMClient
from lm_deluge_cli.engine.task import Answered, LineParser
from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.io.parse import BadLine
from lm_deluge_cli.io.text_lines import TextItem, parse_text_line
from lm_deluge_cli.llm_tools.batch import ToolRun
from lm_deluge_cli.llm_tools.detect import DEFAULT_THRESHOLD, Detector, load_detector
from lm_deluge_cli.llm_tools.languages import language_name
from lm_deluge_cli.results import Answer, Result, Usage
from lm_deluge_cli.types import Prompt

__all__ = [
    "TranslateTask",
    "check_language",
    "translate",
    "translate_async",
    "translation_prompt",
]


def check_language(code: str) -> str:
    """An ISO 639-1 code, lower-cased; ConfigError naming the problem otherwise."""
    clean = code.strip().lower()
    if language_name(clean) is None:
        raise ConfigError(
            f"--to {code!r} is not an ISO 639-1 language code; use two letters such as "
            "en, fr, de, es, ja or zh"
        )
    return clean


def translation_prompt(text: str, to: str = "en") -> str:
    """What is asked for one text."""
    return (
        f"Translate the text below into {language_name(to)}. Reply with the translation "
        f'only: no quotes, notes or explanations.\n\nText:\n"""\n{text}\n"""'
    )


class TranslateTask:
    """A `Task` for `run_job` over ``{"id", "text"}`` lines. With a `detector`, a text
    already in `to` is answered without a request; without one every text is sent."""

    def __init__(self, to: str = "en", *, detector: Detector | None = None) -> None:
        self.to = check_language(to)
        self.detector = detector
        # line → the language the detector was sure of, for a line that was sent (a Prompt
        # cannot carry it); taken back when its record is finished.
        self._detected: dict[int, str] = {}

    def parser(self, base_dir: Path | None, files_root: Path | None) -> LineParser:
        return parse_text_line

    def prepare(self, item: Any) -> Prompt | Answered | BadLine:
        text_item: TextItem = item
        if self.detector is not None:
            verdict = self.detector.detect(text_item.text, self.to)
            if verdict.passes:
                return Answered(_passed_through(text_item, verdict.language))
            if verdict.language is not None:
                self._detected[text_item.line] = verdict.language
        return Prompt(
            id=text_item.id,
            line=text_item.line,
            messages=[{"role": "user", "content": translation_prompt(text_item.text, self.to)}],
            metadata=text_item.metadata,
        )

    def finish(self, record: Result) -> Result:
        if "passed_through" in record.fields:
            return record
        completion = record.completion
        ok = record.ok and isinstance(completion, str)
        fields = {
            **record.fields,
            "translation": completion.strip() if ok and completion else None,
            "detected_language": self._detected.pop(record.line, None),
            "passed_through": False,
        }
        return record.replace(fields=fields)


def _passed_through(item: TextItem, detected: str | None) -> Result:
    return Result(
        id=item.id,
        line=item.line,
        status="ok",
        model=None,
        answers=(Answer(item.text),),
        usage=Usage(),
        cost_usd=0.0,
        metadata=item.metadata,
        fields={"translation": item.text, "detected_language": detected, "passed_through": True},
    )


async def translate_async(
    texts: Sequence[str],
    *,
    to: str = "en",
    model: str | Sequence[str] | None = None,
    client: LLMClient | None = None,
    detect: bool = True,
    threshold: float = DEFAULT_THRESHOLD,
    show_progress: bool = False,
    return_prompts: bool = False,
    return_records: bool = False,
    **client_options: Any,
) -> list[Any]:
    """Each text in `to` (an ISO 639-1 code), in input order: the translation, the text
    itself where it already is in `to` (detected offline; needs the ``translate`` extra),
    or None where it failed.

    Give `model` (with any LLMClient keyword arguments) or a `client`. ``detect=False``
    sends every text; `threshold` is how sure the detector must be to pass a text through.
    ``return_records=True`` gives the full records (`run`'s fields plus ``translation``,
    ``detected_language`` and ``passed_through``).
    """
    target = check_language(to)
    detector = await anyio.to_thread.run_sync(load_detector, threshold) if detect else None
    task = TranslateTask(target, detector=detector)
    lines = [{"text": text} for text in texts]
    run = ToolRun(model, client, client_options, show_progress, return_prompts, return_records)
    return await run.give(task, lines, _translations)


def _translations(results: list[Result]) -> list[Any]:
    return [r.fields.get("translation") if r.ok else None for r in results]


def translate(texts: Sequence[str], **kwargs: Any) -> list[Any]:
    """`translate_async` for code that is not async (same arguments)."""
    return anyio.run(functools.partial(translate_async, texts, **kwargs))
