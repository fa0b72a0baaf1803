"""Which optional test tiers this machine must run: ``MODSTREAM_REQUIRE_<TIER>``, read one way.

A tier needs something the Python environment cannot provide (Java and Maven for Apache Kafka,
the Prometheus binaries, Chromium, a container engine for the deployment). Where it is missing,
its tests skip with one line, unless the tier is required (CI requires all of them), in which
case they fail: a broken set-up cannot pass unnoticed. ``1``/``true``/``yes``/``on`` require a
tier, ``0``/``false``/``no``/``off`` or an empty or unset variable do not, and any other value,
or a variable naming no tier, is refused when the session starts (:func:`check_environment`), so
a typo cannot turn a required tier into a silent skip.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NoReturn

import pytest

__all__ = ["PREFIX", "TIERS", "check_environment", "required", "unavailable"]

PREFIX = "MODSTREAM_REQUIRE_"
TIERS = frozenset({"KAFKA", "PROMETHEUS", "CHROMIUM", "DEPLOY"})
_YES = frozenset({"1", "true", "yes", "on"})
_NO = frozenset({"", "0", "false", "no", "off"})


def required(tier: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether ``MODSTREAM_REQUIRE_<tier>`` makes the tier mandatory; ``ValueError`` on a value
    that is neither yes nor no, or on a tier nobody reads."""
    if tier not in TIERS:
        raise ValueError(f"unknown test tier {tier!r}; the tiers are {', '.join(sorted(TIERS))}")
    variable = PREFIX + tier
    value = environ.get(variable, "").strip().lower()
    if value in _YES:
        return True
    if value in _NO:
        return False
    raise ValueError(
        f"{variable}={environ[variable]!r}: use 1, true, yes or on to require the tier, "
        "0, false, no, off or nothing not to"
    )


def check_environment(environ: Mapping[str, str] = os.environ) -> None:
    """Refuse every ``MODSTREAM_REQUIRE_*`` variable that names no tier or holds no yes/no."""
    for variable in sorted(name for name in environ if name.startswith(PREFIX)):
        tier = variable.removeprefix(PREFIX)
        if tier not in TIERS:
            known = ", ".join(PREFIX + name for name in sorted(TIERS))
            raise ValueError(f"{variable} names no test tier; the variables read are {known}")
        required(tier, environ)


def unavailable(tier: str, reason: str) -> NoReturn:
    """The tier cannot run here: fail if it is required, else skip, saying why either way."""
    if required(tier):
        pytest.fail(f"the {tier.lower()} tier is required here ({PREFIX}{tier}) but {reason}")
    pytest.skip(f"{tier.lower()} tier skipped: {reason}")
