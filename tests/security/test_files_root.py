"""With a files root, input lines can read local images and files only from under it: paths
with `..`, absolute paths, `~`, `file:` URLs and symlinks leading outside become error lines
whose reason says so. Without one (the default), any readable file can be named."""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage

from lm_deluge_cli.io.reader import BadLine, InputReader
from lm_deluge_cli.types import Prompt
from tests.cli_runner import run_cli

OUTSIDE = "is outside the files root"


def png() -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", (4, 4), "red").save(buffer, "PNG")
    return buffer.getvalue()


def jpeg_base64() -> str:
    buffer = io.BytesIO()
    PILImage.new("RGB", (4, 4), "blue").save(buffer, "JPEG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """``root/`` (the files root, with the input), ``root/imgs/cat.png``, ``root/doc.pdf``,
    and ``secret.png`` / ``secret.pdf`` beside the root, outside it."""
    root = tmp_path / "root"
    (root / "imgs").mkdir(parents=True)
    (root / "imgs" / "cat.png").write_bytes(png())
    (root / "doc.pdf").write_bytes(b"%PDF-1.4 inside")
    (tmp_path / "secret.png").write_bytes(png())
    (tmp_path / "secret.pdf").write_bytes(b"%PDF-1.4 the secret")
    return tmp_path


def image(path: str) -> dict[str, Any]:
    return {"type": "image", "path": path}


def image_url(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def read(tree: Path, parts: list[dict[str, Any]], *, root: Path | None) -> Prompt | BadLine:
    """One line with a user message of `parts`, read from ``root/in.jsonl``."""
    source = tree / "root" / "in.jsonl"
    line = {"id": "x", "messages": [{"role": "user", "content": parts}]}
    source.write_text(json.dumps(line) + "\n")
    with InputReader(source, files_root=root) as reader:
        (item,) = list(reader)
    return item


def refused(item: Prompt | BadLine) -> str:
    assert isinstance(item, BadLine), "the line was read"
    assert item.reason.startswith("line 1: ")
    return item.reason


def test_files_under_the_root_are_read(tree: Path) -> None:
    root = tree / "root"
    parts = [
        image("imgs/cat.png"),
        image(str(root / "imgs" / "cat.png")),
        image_url("file:imgs/cat.png"),
        image_url((root / "imgs" / "cat.png").as_uri()),
        image("imgs/../imgs/cat.png"),
        {"type": "file", "path": "doc.pdf"},
    ]
    item = read(tree, parts, root=root)
    assert isinstance(item, Prompt), item
    content = item.messages[0]["content"]
    assert [part["type"] for part in content] == ["image_url"] * 5 + ["file"]


@pytest.mark.parametrize(
    "part",
    [
        image("../secret.png"),
        image("imgs/../../secret.png"),
        {"type": "file", "path": "../secret.pdf"},
        image_url("file:../secret.png"),
    ],
    ids=["dotdot", "dotdot-inside", "pdf", "file-url-relative"],
)
def test_relative_paths_out_of_the_root_are_refused(tree: Path, part: dict[str, Any]) -> None:
    reason = refused(read(tree, [part], root=tree / "root"))
    assert OUTSIDE in reason
    assert str(tree / "root") in reason, "the message names the root"


def test_absolute_paths_and_file_urls_out_of_the_root_are_refused(tree: Path) -> None:
    root = tree / "root"
    secret = tree / "secret.png"
    assert OUTSIDE in refused(read(tree, [image(str(secret))], root=root))
    assert OUTSIDE in refused(read(tree, [image_url(secret.as_uri())], root=root))
    assert OUTSIDE in refused(read(tree, [image("/etc/passwd")], root=root))
    assert OUTSIDE in refused(read(tree, [image("~/.ssh/id_rsa")], root=root))


def test_a_file_url_naming_another_host_is_refused(tree: Path) -> None:
    reason = refused(read(tree, [image_url("file://evil.example/etc/passwd")], root=tree / "root"))
    assert "names another host" in reason


def test_symlinks_are_followed_before_the_check(tree: Path) -> None:
    root = tree / "root"
    (root / "escape.png").symlink_to(tree / "secret.png")
    (root / "out").symlink_to(tree)
    (root / "alias.png").symlink_to(root / "imgs" / "cat.png")
    assert OUTSIDE in refused(read(tree, [image("escape.png")], root=root))
    assert OUTSIDE in refused(read(tree, [image("out/secret.png")], root=root))
    assert isinstance(read(tree, [image("alias.png")], root=root), Prompt)


def test_anthropic_style_blocks_are_confined_too(tree: Path) -> None:
    root = tree / "root"
    document = {"type": "document", "path": "../secret.pdf"}
    assert OUTSIDE in refused(read(tree, [document], root=root))
    source = {"type": "url", "url": (tree / "secret.png").as_uri()}
    assert OUTSIDE in refused(read(tree, [{"type": "image", "source": source}], root=root))
    inside = {"type": "document", "path": "doc.pdf"}
    assert isinstance(read(tree, [inside], root=root), Prompt)


def test_base64_that_looks_like_an_absolute_path_is_still_an_image(tree: Path) -> None:
    data = jpeg_base64()
    assert data.startswith("/"), "a JPEG's base64 starts with /9j/"
    item = read(tree, [image(data)], root=tree / "root")
    assert isinstance(item, Prompt), item


def test_the_root_itself_may_be_a_symlink(tree: Path) -> None:
    link = tree / "link-to-root"
    link.symlink_to(tree / "root")
    assert isinstance(read(tree, [image("imgs/cat.png")], root=link), Prompt)
    assert OUTSIDE in refused(read(tree, [image("../secret.png")], root=link))


def test_without_a_root_any_readable_file_can_be_named(tree: Path) -> None:
    item = read(tree, [image("../secret.png"), image(str(tree / "secret.png"))], root=None)
    assert isinstance(item, Prompt), item


@pytest.mark.parametrize("root", ["root", None])
def test_nothing_outside_the_root_is_read(
    tree: Path, monkeypatch: pytest.MonkeyPatch, root: str | None
) -> None:
    read_paths: list[str] = []
    real_open = os.open

    def spy(path: Any, *args: Any, **kwargs: Any) -> int:
        read_paths.append(os.fspath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    read(tree, [image("../secret.png")], root=None if root is None else tree / root)
    # Without a root the same line does read the file: the spy sees reads.
    assert any("secret" in str(path) for path in read_paths) == (root is None)


def test_the_cli_names_a_files_root_that_is_not_a_folder(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text('{"prompt": "hi"}\n')
    args = ["run", "-i", "in.jsonl", "-o", "out.jsonl", "-m", "mock:fast", "--files-root", "nope"]
    done = run_cli(*args)
    assert done.returncode == 2
    assert b"--files-root" in done.stderr and b"is not a folder" in done.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_the_run_command_confines_files_to_the_root(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [
        {"id": "in", "messages": [{"role": "user", "content": [image("imgs/cat.png")]}]},
        {"id": "out", "messages": [{"role": "user", "content": [image("../secret.png")]}]},
    ]
    (tree / "root" / "in.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    base = ["run", "-m", "mock:fast", "-i", "in.jsonl", "--no-cache", "-q"]
    monkeypatch.chdir(tree / "root")
    done = run_cli(*base, "-o", "out.jsonl", "--files-root", ".")
    assert done.returncode == 1, done.stderr.decode()
    records = {
        r["id"]: r for r in map(json.loads, (tree / "root" / "out.jsonl").read_text().splitlines())
    }
    assert records["in"]["status"] == "ok"
    assert records["out"]["error"]["type"] == "invalid_input"
    assert OUTSIDE in records["out"]["error"]["message"]
    # The same input without a root reads both.
    free = run_cli(*base, "-o", "free.jsonl")
    assert free.returncode == 0, free.stderr.decode()
    # The dry run applies the root too.
    plan = run_cli(*base, "--dry-run", "--json", "--files-root", ".")
    assert json.loads(plan.stdout)["bad_lines"] == 1
