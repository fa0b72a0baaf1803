"""What ``modstream eval`` evaluates: images with a label, 1 = not safe, 0 = safe.

``--labels FILE.csv`` has a header with ``label`` and ``path`` or ``url`` (relative paths are
read from the CSV's folder); ``--dirs safe=DIR nsfw=DIR`` labels every image below each folder.
A row that cannot be used is a :class:`~modstream.errors.ConfigError` naming its line: a labels
file with a typo should stop the run, not quietly shrink the set.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from modstream.errors import ConfigError
from modstream.imagefiles import Skipped, walk_images
from modstream.inputs import Input, has_scheme

__all__ = ["Labelled", "from_csv", "from_dirs"]

_POSITIVE = {"1", "nsfw", "unsafe", "true", "yes"}
_NEGATIVE = {"0", "safe", "sfw", "false", "no"}
_DIR_LABELS = {"safe": 0, "sfw": 0, "nsfw": 1, "unsafe": 1}


@dataclass(frozen=True, slots=True)
class Labelled:
    input: Input
    label: int  # 1: not safe


def from_csv(path: Path) -> list[Labelled]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"--labels {path}: {exc.strerror}") from None
    rows = csv.DictReader(text.splitlines())
    columns = {name.strip().lower() for name in rows.fieldnames or ()}
    if "label" not in columns or not columns & {"path", "url"}:
        raise ConfigError(f"--labels {path}: the header needs 'label' and 'path' or 'url'")
    items: list[Labelled] = []
    for line, row in enumerate(rows, start=2):
        cells = {key.strip().lower(): (value or "").strip() for key, value in row.items() if key}
        where = cells.get("url") or cells.get("path") or ""
        if not where:
            raise ConfigError(f"--labels {path}, line {line}: no path or url")
        items.append(
            Labelled(_input(where, path.parent), _label(cells.get("label", ""), path, line))
        )
    if not items:
        raise ConfigError(f"--labels {path} has no rows")
    return items


def from_dirs(
    specs: Sequence[str], on_skip: Callable[[Skipped], None] | None = None
) -> list[Labelled]:
    """``safe=DIR`` and ``nsfw=DIR`` (each repeatable); files that are not images (by their
    bytes) go to ``on_skip`` with the reason."""
    items: list[Labelled] = []
    for spec in specs:
        name, _, folder = spec.partition("=")
        label = _DIR_LABELS.get(name.strip().lower())
        if label is None or not folder:
            raise ConfigError(f"--dirs {spec!r}: use safe=DIR or nsfw=DIR")
        root = Path(folder)
        if not root.is_dir():
            raise ConfigError(f"--dirs {spec!r}: {root} is not a folder")
        found = walk_images(root, on_skip)
        items += [Labelled(Input(label=str(p), path=p), label) for p in found]
    if not items:
        raise ConfigError("--dirs found no image files")
    return items


def counts(items: Iterable[Labelled]) -> tuple[int, int]:
    """(positives, negatives)."""
    labels = [item.label for item in items]
    return sum(labels), len(labels) - sum(labels)


def _input(where: str, base: Path) -> Input:
    if has_scheme(where):
        return Input(label=where, url=where)
    path = Path(where)
    return Input(label=where, path=path if path.is_absolute() else base / path)


def _label(raw: str, path: Path, line: int) -> int:
    value = raw.lower()
    if value in _POSITIVE:
        return 1
    if value in _NEGATIVE:
        return 0
    raise ConfigError(
        f"--labels {path}, line {line}: label {raw!r} is not 1 (not safe) or 0 (safe)"
    )
