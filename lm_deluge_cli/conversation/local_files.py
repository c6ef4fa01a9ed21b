"""Where the local files an input line names (images, PDFs) are read from, and the one folder
they may be read from.

Without a root any readable file can be named, relative to the base folder or absolute. With
a root (``--files-root``), a path or ``file:`` URL whose target, symlinks resolved, lies
outside it is refused before anything is opened, so an input line cannot read ``~/.ssh`` or
``../../etc/passwd``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lm_deluge_cli.images import MediaError, bare_base64, file_url_path

__all__ = ["BaseDir", "LocalFiles", "OutsideFilesRoot", "base_folder", "local_source"]


class OutsideFilesRoot(ValueError):
    """A local file that lies outside the files root; the message names both."""


@dataclass(frozen=True, slots=True)
class LocalFiles:
    """Relative paths resolve against `base_dir` (else the working directory); with `root`,
    only files under it (symlinks resolved) may be read."""

    base_dir: Path | None = None
    root: Path | None = None

    def source(self, text: str) -> str | Path | bytes:
        """What to load for a local path or ``file:`` URL: `text` itself without a root;
        with one, the checked target's real path (or, for text that names no file but is
        long base64, its bytes). Raises OutsideFilesRoot for anything else."""
        if self.root is None:
            return text
        is_url = text.startswith("file:")
        path = Path(_url_path(text) if is_url else text).expanduser()
        if not path.is_absolute():
            path = (self.base_dir or Path.cwd()) / path
        try:
            real = Path(os.path.realpath(path))
        except (OSError, ValueError):
            real = path
        root = Path(os.path.realpath(self.root))
        if real == root or real.is_relative_to(root):
            return real
        if not is_url and not _lexists(path):
            raw = bare_base64(text)
            if raw is not None:
                return raw
        shown = text if len(text) <= 120 else text[:100] + "…"
        raise OutsideFilesRoot(
            f"{shown!r} is outside the files root {root}: only files under --files-root "
            "(files_root in the job file) can be read"
        )


# What conversion functions accept as their `base_dir`: a folder, or a LocalFiles.
BaseDir = str | Path | LocalFiles | None


def base_folder(base_dir: BaseDir) -> str | Path | None:
    """The folder relative paths resolve against."""
    return base_dir.base_dir if isinstance(base_dir, LocalFiles) else base_dir


def local_source(text: str, base_dir: BaseDir) -> str | Path | bytes:
    """`text` (a path or ``file:`` URL) checked against the files root, if there is one."""
    return base_dir.source(text) if isinstance(base_dir, LocalFiles) else text


def _url_path(url: str) -> str:
    """The path of a ``file:`` URL, read exactly as `lm_deluge_cli.images` will read it."""
    try:
        return file_url_path(url)
    except MediaError as exc:  # another host
        raise OutsideFilesRoot(str(exc)) from None


def _lexists(path: Path) -> bool:
    try:
        return os.path.lexists(path)
    except (OSError, ValueError):
        return False
