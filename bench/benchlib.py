"""What the benchmark scripts share: the machine description, a parser built from a docstring."""

from __future__ import annotations

import argparse

CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8")


def cpu_model() -> tuple[str, list[str]]:
    """The CPU's model name and which of the flags that matter for inference it has."""
    model, flags = "unknown", []
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fp:
            for line in fp:
                if line.startswith("model name") and model == "unknown":
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    break
    except OSError:
        pass
    return model, [flag for flag in CPU_FLAGS if flag in flags]


def doc_parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser whose description is the docstring's first line and whose epilog is the rest."""
    lines = (doc or "").splitlines()
    return argparse.ArgumentParser(
        description=lines[0] if lines else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(lines[2:]) or None,
    )
