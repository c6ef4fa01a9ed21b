"""Offline language detection for `translate`: which texts are already in the target language.

The detector is py3langid (the optional extra ``translate``: ``pip install
'lm-deluge-cli[translate]'``), whose model ships inside the package, so nothing is
downloaded. A text passes through untranslated only when it is long enough to judge
(`MIN_DETECT_CHARS`) and the detector gives the target language at least `threshold`
(`DEFAULT_THRESHOLD`) of its normalised probability; anything less certain is sent, since
a needless translation costs one request and a wrong pass-through costs a wrong answer.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from dataclasses import dataclass
from typing import Any

from lm_deluge_cli.errors import ConfigError

__all__ = [
    "DEFAULT_THRESHOLD",
    "INSTALL_HINT",
    "MIN_DETECT_CHARS",
    "Detection",
    "Detector",
    "detector_available",
    "load_detector",
]

log = logging.getLogger(__name__)

# The probability the target language must reach for a text to pass through.
DEFAULT_THRESHOLD = 0.9
# Texts shorter than this (stripped) are always sent: "ok" or "Hola" cannot be judged.
MIN_DETECT_CHARS = 20
INSTALL_HINT = "pip install 'lm-deluge-cli[translate]' (py3langid)"


@dataclass(frozen=True, slots=True)
class Detection:
    """The detector's verdict on one text: the language it is sure of (None when it is not
    sure, or the text is too short), and whether the text can pass through."""

    language: str | None
    probability: float | None
    passes: bool


class Detector:
    """Wraps a py3langid identifier built with normalised probabilities (fast per text;
    loading it takes most of a second, see `load_detector`)."""

    def __init__(
        self,
        identifier: Any,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        min_chars: int = MIN_DETECT_CHARS,
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ConfigError(f"the detection threshold must be in (0, 1], got {threshold!r}")
        self._identifier = identifier
        self.threshold = threshold
        self.min_chars = min_chars

    @property
    def languages(self) -> frozenset[str]:
        """The codes the model knows."""
        return frozenset(self._identifier.nb_classes)

    def with_threshold(self, threshold: float) -> Detector:
        """The same model with another threshold."""
        return Detector(self._identifier, threshold=threshold, min_chars=self.min_chars)

    def detect(self, text: str, target: str) -> Detection:
        """Whether `text` is in `target` confidently enough to pass through."""
        if len(text.strip()) < self.min_chars:
            return Detection(None, None, False)
        language, probability = self._identifier.classify(text)
        probability = float(probability)
        if probability < self.threshold:
            return Detection(None, probability, False)
        return Detection(str(language), probability, language == target)


def detector_available() -> bool:
    """Whether py3langid is installed."""
    return importlib.util.find_spec("py3langid") is not None


@functools.cache
def _identifier() -> Any:
    # Imported by name: an optional dependency without type information.
    langid = importlib.import_module("py3langid.langid")
    return langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)


def load_detector(threshold: float = DEFAULT_THRESHOLD) -> Detector | None:
    """The detector (its model is loaded once per process; call this off the event loop),
    or None, with one warning saying how to install it, when py3langid is missing."""
    if not detector_available():
        _warn_missing()
        return None
    return Detector(_identifier(), threshold=threshold)


@functools.cache
def _warn_missing() -> None:
    log.warning(
        "translate: no language detector, so every line is sent (also those already in the "
        "target language); to pass those through offline: %s",
        INSTALL_HINT,
    )
