"""``python -m stack --prepare``: build the deployment tier's images (stand-ins for what no
registry serves here, then modstream's own through compose), saying how long each step took.
CI runs it as a step of its own before ``pytest -m deploy``."""

from __future__ import annotations

import subprocess
import sys
import time

from . import CommandFailed, EngineUnavailable, prepare


def main(argv: list[str]) -> int:
    if argv != ["--prepare"]:
        print("usage: python -m stack --prepare", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        took = prepare()
    except (EngineUnavailable, CommandFailed, subprocess.CalledProcessError) as exc:
        print(f"stack: cannot prepare the deployment tier: {exc}", file=sys.stderr)
        return 1
    for step, seconds in took.items():
        print(f"stack: {step}: {seconds:.1f} s", file=sys.stderr)
    print(f"stack: prepared in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
