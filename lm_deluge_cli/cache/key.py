"""The cache key: a stable hash of everything that decides a model's answer, and nothing else.

What goes in (as canonical JSON, keys sorted, then SHA-256):

* a format version (bumped if this list ever changes, so old entries simply miss);
* the provider's name and the model's wire id (``openai`` + ``gpt-4.1-mini``), not the name
  the job used for it: an alias and its full id share entries;
* the message list exactly as it is sent, images and files included by content (their
  bytes are in the message as base64, so two copies of one photo under different names hit,
  and an edited photo misses); an image given by URL is keyed by its URL;
* every sampling parameter after the model's unsupported ones are left out (what is sent),
  the JSON schema among them, but the number of samples: each sample has a key of its own
  (`sample_key`), so asking for more samples later sends only the new ones;
* request fields passed through from the input line (tools, for instance).

What stays out: the line's id and metadata, the job's weights, limits and paths, the base
URL and the key (a proxy in front of the same provider shares entries).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from lm_deluge_cli.types import SAMPLING_FIELDS, SamplingParams

__all__ = ["KEY_VERSION", "RequestKeys", "cache_key", "content_digest", "line_key", "sample_key"]

KEY_VERSION = 1


def content_digest(
    messages: Sequence[Mapping[str, Any]], extra_body: Mapping[str, Any] | None = None
) -> str:
    """Hex SHA-256 of what a prompt asks, whichever model it goes to: the messages as sent
    and the request fields passed through. Computed once per prompt."""
    # The canonical JSON of {"messages": …, "extra": …}, written out: sorted, "extra" comes
    # first, and the object around the two is not worth building for every prompt.
    extra = _canonical(extra_body) if extra_body else b"{}"
    material = b'{"extra":' + extra + b',"messages":' + _canonical(messages) + b"}"
    return hashlib.sha256(material).hexdigest()


class RequestKeys:
    """`cache_key` for one provider, model and sampling: what they add to every key is
    encoded once, so that the prompts of a job sharing them pay only for their content."""

    __slots__ = ("_tail",)

    def __init__(self, provider: str, wire_id: str, sampling: SamplingParams) -> None:
        rest = {
            "v": KEY_VERSION,
            "provider": provider,
            "model": wire_id,
            "sampling": _canonical_sampling(sampling),
        }
        # The canonical material is {"content": …, then the rest: "content" sorts first.
        self._tail = b"," + _canonical(rest)[1:]

    def key(self, content: str) -> str:
        """The 64-character hex key of the request asking `content` (a `content_digest`)."""
        return hashlib.sha256(b'{"content":' + _canonical(content) + self._tail).hexdigest()


def cache_key(provider: str, wire_id: str, content: str, sampling: SamplingParams) -> str:
    """The 64-character hex key of one request; `content` is the prompt's `content_digest`."""
    return RequestKeys(provider, wire_id, sampling).key(content)


def line_key(key: str, line_id: str) -> str:
    """The key of a request sent for one line alone (identical lines not shared, as with
    ``--no-dedupe``): the request's key and the line's id (`Prompt.key`), so a rerun finds
    each line's own answer."""
    return hashlib.sha256(f"{key}:line:{line_id}".encode()).hexdigest()


def sample_key(key: str, index: int) -> str:
    """The key of a request's sample number `index` (from 0). The first sample's is the
    request's own, so a line asked for one sample and later for more keeps its answer."""
    if index == 0:
        return key
    return hashlib.sha256(f"{key}:sample:{index}".encode()).hexdigest()


# Every sampling field but the count of samples.
_KEYED_FIELDS = tuple(name for name in SAMPLING_FIELDS if name != "samples")


def _canonical(value: Any) -> bytes:
    # Sorted keys make dict order irrelevant. Keys that are not strings (only Python callers
    # can make them) need orjson's slower option: tried only when the quick one refuses.
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def _canonical_sampling(sampling: SamplingParams) -> dict[str, Any]:
    """The fields as sent; 1 and 1.0 are one temperature, so numbers of float fields are
    written as floats."""
    # Field by field, not dataclasses.asdict: that deep-copies, and this runs per prompt.
    fields = {name: getattr(sampling, name) for name in _KEYED_FIELDS}
    for name in ("temperature", "top_p"):
        fields[name] = float(fields[name])
    return fields
