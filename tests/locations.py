"""Where the tests' files are: the fixtures, the bundled samples, the repository."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
LADDER = TESTS / "fixtures" / "ladder"  # synthetic images with reference scores 0.02-0.98
SAMPLES = REPO / "modstream" / "samples"
DEPLOY = REPO / "deploy"
PDQ = TESTS / "fixtures" / "pdq"  # a photograph with its published reference PDQ hash
