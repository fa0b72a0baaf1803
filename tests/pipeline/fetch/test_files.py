"""file: URLs: off by default, and never a way out of the allowed root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modstream.errors import BlockedPath, BodyTooLarge, InvalidUrl, ModstreamError, NotFound
from modstream.pipeline.fetch.fetcher import FetchConfig, Fetcher
from modstream.pipeline.fetch.files import read_file_url


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    (root / "a").mkdir(parents=True)
    (root / "a" / "cat photo.jpg").write_bytes(b"\xff\xd8jpeg")
    (tmp_path / "secret.txt").write_text("password")
    (root / "escape.jpg").symlink_to(tmp_path / "secret.txt")
    (root / "inside.jpg").symlink_to(root / "a" / "cat photo.jpg")
    (root / "out").symlink_to(tmp_path, target_is_directory=True)
    return root


def test_files_below_the_root_are_read(tree: Path) -> None:
    """A percent-encoded path below the root, and a symlink that stays inside it, are read."""
    url = (tree / "a" / "cat photo.jpg").as_uri()
    assert "%20" in url
    assert read_file_url(url, tree, 100)[0] == b"\xff\xd8jpeg"
    assert read_file_url((tree / "inside.jpg").as_uri(), tree, 100)[0] == b"\xff\xd8jpeg"


@pytest.mark.parametrize(
    ("relative", "error", "kind"),
    [
        ("a/../../secret.txt", BlockedPath, "blocked_path"),
        ("escape.jpg", BlockedPath, "blocked_path"),
        ("out/secret.txt", BlockedPath, "blocked_path"),
        ("a/missing.jpg", NotFound, "not_found"),
    ],
)
def test_dot_dot_and_symlinks_out_of_the_root_are_refused(
    tree: Path, relative: str, error: type[ModstreamError], kind: str
) -> None:
    """``../`` and symlinks that resolve outside the root are blocked_path; nothing is read."""
    url = f"file://{tree}/{relative}"
    with pytest.raises(error) as raised:
        read_file_url(url, tree, 100)
    assert raised.value.kind == kind


def test_file_urls_are_invalid_without_a_root_or_with_a_remote_host(tree: Path) -> None:
    """With no root configured (the default) a file: URL is invalid_url, naming the flag."""
    with pytest.raises(InvalidUrl, match="--allow-file-root"):
        read_file_url((tree / "a" / "cat photo.jpg").as_uri(), None, 100)
    with pytest.raises(InvalidUrl, match="remote host"):
        read_file_url(f"file://example.com{tree}/a/x.jpg", tree, 100)


@pytest.mark.parametrize(
    ("url", "error", "kind"),
    [
        ("file://{root}/a/cat%00photo.jpg", InvalidUrl, "invalid_url"),  # a NUL byte
        ("file://[::1/{root}/a.jpg", InvalidUrl, "invalid_url"),  # an unclosed IPv6 bracket
        ("file://localhost:99999{root}/a.jpg", InvalidUrl, "invalid_url"),  # no such port
        ("file://{root}/a/", NotFound, "not_found"),  # a folder below the root
        ("file://{root}/pipe", NotFound, "not_found"),  # a FIFO: opening it must not wait
    ],
    ids=["nul byte", "bad bracket", "bad port", "folder", "fifo"],
)
def test_urls_that_name_no_readable_file_are_typed_errors(
    tree: Path, url: str, error: type[ModstreamError], kind: str
) -> None:
    """What a backfill line can hold that names no file to read is a typed error, never an
    exception the stream would have to report as internal."""
    os.mkfifo(tree / "pipe")
    with pytest.raises(error) as raised:
        read_file_url(url.format(root=tree), tree, 100)
    assert type(raised.value) is error and raised.value.kind == kind


def test_a_file_over_the_byte_limit_is_too_large(tree: Path) -> None:
    """The byte limit holds for files as for HTTP bodies."""
    with pytest.raises(BodyTooLarge):
        read_file_url((tree / "a" / "cat photo.jpg").as_uri(), tree, 3)


async def test_the_fetcher_reads_file_urls_only_with_a_root(tree: Path) -> None:
    """The fetcher routes file: URLs to the root-confined reader, FILE: in capitals too."""
    url = "FILE://" + (tree / "a" / "cat photo.jpg").as_uri().removeprefix("file://")
    async with Fetcher(FetchConfig(file_root=tree)) as fetcher:
        assert (await fetcher.fetch(url)).body == b"\xff\xd8jpeg"
    async with Fetcher(FetchConfig()) as fetcher:
        with pytest.raises(InvalidUrl):
            await fetcher.fetch(url)
