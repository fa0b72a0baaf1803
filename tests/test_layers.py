"""The import contracts in pyproject.toml hold, and they would catch a module that broke them.

``make lint`` runs them on the tree; here they also run on a copy of the package with one
scratch import added where a contract forbids it, which must fail naming that contract, so a
contract cannot pass merely because it checks nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from locations import REPO

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the package under ``root`` (ahead of the installed one on the path)."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(REPO / "modstream", root / "modstream",
                    ignore=shutil.ignore_patterns("__pycache__", "samples"))  # fmt: skip
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_tree_keeps_every_contract(tmp_path: Path) -> None:
    done = _lint(_copy(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "scratch", "contract"),
    [
        ("pipeline/stream/scoring.py", "import aiokafka",
         "Only kafka/ speaks to the broker: aiokafka is imported nowhere else"),
        ("labeler/service.py", "from aiokafka.errors import KafkaError",
         "Only kafka/ speaks to the broker: aiokafka is imported nowhere else"),
        ("pipeline/score/scorer.py", "import modstream.kafka.sink",
         "The moderation step knows no broker: only the stream (and kafka/) use Kafka"),
    ],
)  # fmt: skip
def test_a_scratch_import_that_breaks_a_contract_fails_it(
    tmp_path: Path, module: str, scratch: str, contract: str
) -> None:
    root = _copy(tmp_path)
    path = root / "modstream" / module
    path.write_text(path.read_text() + f"\n{scratch}  # scratch\n")
    done = _lint(root)
    assert done.returncode != 0
    assert f"{contract} BROKEN" in done.stdout, done.stdout
