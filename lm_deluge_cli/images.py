"""Media for prompts: reading image and file bytes, fitting images to a provider's limits, and
the token each provider charges for an image.

Every provider downscales a large image itself (keeping its aspect ratio) and bills the
scaled size, so pixels beyond its limit only cost bandwidth. The limits used here, and the
token rules, are the providers' published ones:

* **OpenAI** (detail "high"/"auto"): fit in 2048×2048, then scale so the short side is at most
  768 px; 85 tokens plus 170 per 512-px tile (85 flat at detail "low"). A 1024×1024 image
  costs 765 tokens, 2048×4096 costs 1105. Source: platform.openai.com/docs/guides/vision,
  "Calculating costs".
* **Anthropic**: long edge at most 1568 px and about 1.15 megapixels (~1,600 tokens);
  tokens ≈ width × height / 750. Source: docs.anthropic.com/en/docs/build-with-claude/vision,
  "Evaluate image size".
* **Gemini**: larger images are scaled to fit 3072×3072; 258 tokens when both sides are at
  most 384 px, else 258 per 768×768 tile. Sources: ai.google.dev/gemini-api/docs/tokens and
  the Vertex AI input-file requirements. (Gemini 3's media_resolution budgets are lower, so
  this rule errs high, which only makes pacing cautious.)

Other wire formats (Mistral, Cohere, OpenAI-compatible servers) use the OpenAI rule.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import math
import mimetypes
import os
import stat
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError

__all__ = [
    "JPEG_QUALITY",
    "MAX_IMAGE_BYTES",
    "MAX_READ_BYTES",
    "PROVIDER_LIMITS",
    "WIRE_LIMITS",
    "Image",
    "ImageLimits",
    "MediaError",
    "MediaSource",
    "bare_base64",
    "data_url_image_size",
    "file_url_path",
    "fit_size",
    "image_tokens",
    "parse_base64_data_url",
    "provider_family",
    "read_media",
    "sniff_file_type",
]


class MediaError(ValueError):
    """An image or file that cannot be read or decoded; the message names it."""


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """The largest image worth sending: every bound is a ceiling, images are never enlarged."""

    max_side: int
    max_short_side: int | None = None
    max_pixels: int | None = None


PROVIDER_LIMITS: Mapping[str, ImageLimits] = {
    "openai": ImageLimits(max_side=2048, max_short_side=768),
    "anthropic": ImageLimits(max_side=1568, max_pixels=1_150_000),
    "gemini": ImageLimits(max_side=3072),
}
# For messages not yet bound to one provider (the engine's wire, where a prompt may go to
# any model of the job): 2000 px keeps every pixel OpenAI and Anthropic use and stays under
# Anthropic's 2000-px cap for requests holding more than 20 images.
WIRE_LIMITS = ImageLimits(max_side=2000)
# Anthropic's per-image ceiling, the smallest of the three: a lossless re-encode above it
# falls back to JPEG.
MAX_IMAGE_BYTES = 5 * 1024 * 1024
JPEG_QUALITY = 90
# Types all three providers take; others (BMP, TIFF, …) are re-encoded even when small.
_SENDABLE = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
# Base64 characters decoded to read an image's header; enough for PNG, GIF and WebP, and for
# most JPEGs (whose size comes after any EXIF block). A miss decodes the whole image.
_HEADER_CHARS = 64 * 1024
# The most bytes of one local file a line names that are read, checked before reading, by
# kind. An image is scaled down and re-encoded before it is sent, so its ceiling is the most
# image bytes any of the three providers takes in one request (OpenAI: 50 MB per request,
# platform.openai.com/docs/guides/images-vision, "Image input requirements"). A file (a PDF)
# is sent as it is: Anthropic's request limit, 32 MB (docs.anthropic.com, "Vision" and "PDF
# support"), is the ceiling a larger one meets first.
MAX_READ_BYTES: Mapping[str, int] = {"image": 50 * 1024 * 1024, "file": 32 * 1024 * 1024}
_PDF_MAGIC = b"%PDF-"
_MIN_BASE64_CHARS = 100


def provider_family(name: str) -> str:
    """The rule family of a provider or wire-format name: "anthropic" (Bedrock too), "gemini",
    or "openai" for everything else (OpenAI-compatible servers, Mistral, Cohere)."""
    lowered = name.lower()
    if "anthropic" in lowered or lowered == "bedrock":
        return "anthropic"
    if "gemini" in lowered or lowered == "google":
        return "gemini"
    return "openai"


def fit_size(width: int, height: int, limits: ImageLimits) -> tuple[int, int]:
    """The size an image of width × height is scaled down to under `limits` (never up)."""
    long_side, short_side = max(width, height), min(width, height)
    scale = min(1.0, limits.max_side / long_side)
    if limits.max_short_side is not None:
        scale = min(scale, limits.max_short_side / short_side)
    if limits.max_pixels is not None:
        scale = min(scale, math.sqrt(limits.max_pixels / (width * height)))
    if scale >= 1.0:
        return width, height
    # Rounding down keeps every bound (the pixel budget included); the epsilon keeps a side
    # the scale was computed from (1568 = 3000 × 1568/3000) from landing a pixel short.
    return (
        max(1, math.floor(width * scale + 1e-9)),
        max(1, math.floor(height * scale + 1e-9)),
    )


def image_tokens(
    width: int, height: int, provider: str = "openai", detail: str | None = None
) -> int:
    """Input tokens one width × height image costs at `provider` (see the module docstring)."""
    family = provider_family(provider)
    w, h = fit_size(width, height, PROVIDER_LIMITS[family])
    if family == "anthropic":
        return math.ceil(w * h / 750)
    if family == "gemini":
        if w <= 384 and h <= 384:
            return 258
        return 258 * math.ceil(w / 768) * math.ceil(h / 768)
    if detail == "low":
        return 85
    return 85 + 170 * math.ceil(w / 512) * math.ceil(h / 512)


@dataclass(frozen=True, slots=True)
class MediaSource:
    """Bytes read from a path, a data URL, base64 text or memory, and what they were called."""

    data: bytes
    name: str
    media_type: str | None = None


def read_media(source: Any, what: str = "file", base_dir: str | Path | None = None) -> MediaSource:
    """Read `source`: bytes, a file-like object, a path (``str`` or ``Path``, relative ones from
    `base_dir`, else the working directory), a ``file:`` URL, a base64 ``data:`` URL, or bare
    base64 text. `what` ("image", "file") names it in a MediaError."""
    if isinstance(source, bytes | bytearray | memoryview):
        return MediaSource(bytes(source), f"<{what} bytes>")
    if hasattr(source, "read"):
        data = source.read()
        if not isinstance(data, bytes):
            raise MediaError(f"the {what} stream must be opened in binary mode")
        return MediaSource(data, f"<{what} stream>")
    if isinstance(source, os.PathLike):
        return _read_path(os.fspath(source), what, base_dir)
    if not isinstance(source, str) or not source:
        raise MediaError(f"cannot read a {what} from {type(source).__name__}")
    if source.startswith("data:"):
        media_type, data = parse_base64_data_url(source, what)
        return MediaSource(data, f"<{what} data URL>", media_type)
    if source.startswith("file:"):
        return _read_path(file_url_path(source), what, base_dir, given=source)
    if not _exists(_resolve(source, base_dir)):
        raw = bare_base64(source)
        if raw is not None:
            return MediaSource(raw, f"<base64 {what}>")
    return _read_path(source, what, base_dir)


def parse_base64_data_url(url: str, what: str = "file") -> tuple[str, bytes]:
    """(media type, bytes) of a ``data:<type>;base64,<payload>`` URL; MediaError otherwise."""
    header, comma, payload = url[len("data:") :].partition(",")
    params = [p.strip() for p in header.split(";")]
    if not comma or "base64" not in (p.lower() for p in params[1:]):
        raise MediaError(f"a {what} data URL must be base64 (data:<type>;base64,<data>)")
    try:
        data = base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError):
        raise MediaError(f"the {what} data URL holds invalid base64") from None
    return params[0].lower() or "application/octet-stream", data


def _read_path(
    text: str, what: str, base_dir: str | Path | None, given: str | None = None
) -> MediaSource:
    path = _resolve(text, base_dir)
    named = given or text
    # A long string that was meant as base64 would otherwise fill the whole message.
    named = named if len(named) <= 120 else named[:100] + "…"
    shown = repr(named) if str(path) == text else f"{named!r} ({path})"
    limit = MAX_READ_BYTES.get(what, MAX_READ_BYTES["file"])
    try:
        data = _read_regular_file(path, limit)
    except FileNotFoundError:
        raise MediaError(f"cannot read {what} {shown}: no such file") from None
    except _NotRegular as exc:
        raise MediaError(
            f"cannot read {what} {shown}: it is {exc}, not a regular file "
            "(only regular files are read)"
        ) from None
    except _TooLarge as exc:
        raise MediaError(
            f"cannot read {what} {shown}: it is {exc.size:,} bytes, over the limit of "
            f"{_megabytes(limit)} ({limit:,} bytes) for one {what}"
        ) from None
    except OSError as exc:
        raise MediaError(f"cannot read {what} {shown}: {exc.strerror or exc}") from None
    guessed, _ = mimetypes.guess_type(path.name, strict=False)
    return MediaSource(data, path.name, guessed)


class _NotRegular(Exception):
    """A path that names a folder, device, pipe or socket; the message says which."""


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _not_regular(mode: int) -> _NotRegular | None:
    if stat.S_ISREG(mode):
        return None
    return _NotRegular(next((name for test, name in _KINDS if test(mode)), "a special file"))


def _read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of the regular file `path`, at most `limit` of them.

    The size is checked before anything is read, and the path is looked at before it is
    opened: /dev/zero would fill memory, and opening a named pipe waits for its writer. The
    open does not wait either (O_NONBLOCK), and what it opened is checked again, so a file
    swapped for a pipe in between is still refused; one that grows is read no further.
    """
    refused = _not_regular(os.stat(path).st_mode)
    if refused is not None:
        raise refused
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    with open(fd, "rb", buffering=0) as stream:
        info = os.fstat(fd)
        refused = _not_regular(info.st_mode)
        if refused is not None:
            raise refused
        if info.st_size > limit:
            raise _TooLarge(info.st_size)
        # One byte past the size shows a file that grew; files whose size says nothing
        # (those under /proc say 0) are read on in pieces, never past the limit.
        data = stream.read(min(info.st_size, limit) + 1)
        while len(data) <= limit and (more := stream.read(min(_PIECE, limit + 1 - len(data)))):
            data += more
    if len(data) > limit:
        raise _TooLarge(len(data))
    return data


_PIECE = 1 << 20


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):g} MB"


def _resolve(text: str, base_dir: str | Path | None) -> Path:
    path = Path(text).expanduser()
    if base_dir is not None and not path.is_absolute():
        path = Path(base_dir) / path
    return path


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a name too long for the file system, an embedded NUL
        return False


def file_url_path(url: str) -> str:
    """The path of a ``file:`` URL: ``file:imgs/a.png`` (relative) or ``file:///abs/a.png``."""
    if url.startswith("file://"):
        parts = urllib.parse.urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise MediaError(f"{url!r} names another host; only local files can be read")
        return urllib.request.url2pathname(parts.path)
    return urllib.parse.unquote(url[len("file:") :])


def bare_base64(text: str) -> bytes | None:
    """The bytes of `text` read as base64 (whitespace ignored); None when it is not base64.

    Only long text can be base64 media: a shorter string that names no file is a path with a
    typo, and is reported as one.
    """
    if len(text) < _MIN_BASE64_CHARS:
        return None
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def _open(data: bytes, name: str) -> PILImage.Image:
    try:
        return PILImage.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise MediaError(f"{name} is not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise MediaError(f"{name} is not a readable image ({exc})") from None
    except PILImage.DecompressionBombError as exc:
        raise MediaError(f"{name} is too large to decode ({exc})") from None


def data_url_image_size(url: str) -> tuple[int, int] | None:
    """(width, height) of a base64 image data URL, from its header alone when possible;
    None when it is not a readable image data URL."""
    if not url.startswith("data:"):
        return None
    _, comma, payload = url.partition(",")
    if not comma:
        return None
    prefix = payload[: _HEADER_CHARS - _HEADER_CHARS % 4]
    for chunk in (prefix, payload) if len(prefix) < len(payload) else (payload,):
        try:
            with PILImage.open(io.BytesIO(base64.b64decode(chunk))) as img:
                return img.size
        except (binascii.Error, ValueError, OSError, SyntaxError, PILImage.DecompressionBombError):
            continue
    return None


@dataclass(frozen=True, slots=True)
class Image:
    """An image part: bytes (with their media type) or a remote http(s) URL the provider fetches.

    Build one with `Image.load`; `fitted` gives the copy sized for a provider, `sha256` the
    content hash of the bytes sent (a stable cache key).
    """

    data: bytes | None = None
    media_type: str | None = None
    url: str | None = None
    detail: str | None = None
    # Where the image came from, for messages: not part of its identity.
    name: str = field(default="<image>", compare=False)
    # The prompt-cache breakpoint on the part (Anthropic's cache_control), carried to the wire.
    cache_control: Mapping[str, Any] | None = field(default=None, hash=False)

    @classmethod
    def load(
        cls,
        source: Any,
        *,
        media_type: str | None = None,
        detail: str | None = None,
        base_dir: str | Path | None = None,
    ) -> Image:
        """An image from a path, ``file:`` URL, bytes, file object, base64, data URL or
        http(s) URL.

        Local data is read and checked to be an image now, and its media type is the one its
        bytes show (providers refuse a mislabelled image); `media_type` only labels a URL.
        """
        if isinstance(source, Image):
            return source
        if isinstance(source, str) and source.startswith(("https://", "http://")):
            return cls(url=source, media_type=media_type, detail=detail, name=source)
        read = read_media(source, "image", base_dir)
        with _open(read.data, read.name) as img:
            sniffed = (
                PILImage.MIME.get(img.format or "") or f"image/{(img.format or 'png').lower()}"
            )
        return cls(data=read.data, media_type=sniffed, detail=detail, name=read.name)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels, read from the header; a URL image raises MediaError."""
        if self.data is None:
            raise MediaError(f"the size of {self.name} is unknown until the provider fetches it")
        with _open(self.data, self.name) as img:
            return img.size

    @property
    def sha256(self) -> str:
        """Hex sha256 of the bytes (or, for a URL image, of the URL)."""
        return hashlib.sha256(
            self.data if self.data is not None else str(self.url).encode()
        ).hexdigest()

    @property
    def data_url(self) -> str:
        """The image as the URL a request carries: its http(s) URL or a base64 data URL."""
        if self.data is None:
            return str(self.url)
        return f"data:{self.media_type};base64,{base64.b64encode(self.data).decode('ascii')}"

    def fitted(self, limits: ImageLimits) -> Image:
        """This image scaled down (aspect kept) and re-encoded to fit `limits`, or itself
        when it already fits in a format every provider takes.

        Re-encoding keeps transparency and PNG or GIF sources lossless (PNG, unless that
        exceeds MAX_IMAGE_BYTES), and writes everything else as JPEG.
        """
        if self.data is None:
            return self  # the provider fetches and scales a URL image itself
        with _open(self.data, self.name) as img:
            target = fit_size(*img.size, limits)
            if target == img.size and self.media_type in _SENDABLE:
                return self
            try:
                data, media_type = _encode(img, limits)
            except (OSError, SyntaxError, ValueError, PILImage.DecompressionBombError) as exc:
                raise MediaError(f"{self.name} cannot be decoded ({exc})") from None
        return replace(self, data=data, media_type=media_type)

    def openai_part(self, limits: ImageLimits = WIRE_LIMITS) -> dict[str, Any]:
        """The OpenAI chat ``image_url`` content part for this image, fitted to `limits`."""
        image_url: dict[str, Any] = {"url": self.fitted(limits).data_url}
        if self.detail is not None:
            image_url["detail"] = self.detail
        part: dict[str, Any] = {"type": "image_url", "image_url": image_url}
        if self.cache_control is not None:
            part["cache_control"] = dict(self.cache_control)
        return part


def _encode(img: PILImage.Image, limits: ImageLimits) -> tuple[bytes, str]:
    lossless_source = img.format in ("PNG", "GIF")
    # The EXIF orientation is applied first, since re-encoding drops the tag that carried it.
    frame = ImageOps.exif_transpose(img) or img
    alpha = frame.mode in ("RGBA", "LA", "PA") or "transparency" in frame.info
    frame = frame.convert("RGBA" if alpha else ("L" if frame.mode in ("1", "L") else "RGB"))
    target = fit_size(*frame.size, limits)
    if target != frame.size:
        frame = frame.resize(target, PILImage.Resampling.LANCZOS)
    if alpha or lossless_source:
        out = io.BytesIO()
        frame.save(out, format="PNG", optimize=True)
        if alpha or out.tell() <= MAX_IMAGE_BYTES:
            return out.getvalue(), "image/png"
    out = io.BytesIO()
    frame.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue(), "image/jpeg"


def sniff_file_type(data: bytes, name: str) -> str:
    """The media type of file bytes: PDF by its magic number, else by the name's extension."""
    if data.startswith(_PDF_MAGIC):
        return "application/pdf"
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"
