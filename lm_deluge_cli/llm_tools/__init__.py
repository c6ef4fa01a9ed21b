"""The toolkit: extract, translate and score, run through the same engine as `lm-deluge run`
(limits, retries, cache), from Python and as the commands of the same names."""

from __future__ import annotations

from lm_deluge_cli.llm_tools.detect import DEFAULT_THRESHOLD, MIN_DETECT_CHARS
from lm_deluge_cli.llm_tools.extract import ExtractTask, extract, extract_async
from lm_deluge_cli.llm_tools.schemas import check_schema, load_schema
from lm_deluge_cli.llm_tools.score import ScoreTask, p_yes, score, score_async
from lm_deluge_cli.llm_tools.translate import TranslateTask, translate, translate_async

__all__ = [
    "DEFAULT_THRESHOLD",
    "MIN_DETECT_CHARS",
    "ExtractTask",
    "ScoreTask",
    "TranslateTask",
    "check_schema",
    "extract",
    "extract_async",
    "load_schema",
    "p_yes",
    "score",
    "score_async",
    "translate",
    "translate_async",
]
