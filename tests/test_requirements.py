"""MODSTREAM_REQUIRE_<TIER>: one reading of yes and no for every optional test tier."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import locations
import pytest
from requirements import check_environment, required, unavailable

ROOT = locations.REPO


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", " Yes ", "on"])
def test_yes_in_any_spelling_requires_the_tier(value: str) -> None:
    """CI's 1, and the words people write instead, all make the tier mandatory."""
    assert required("KAFKA", {"MODSTREAM_REQUIRE_KAFKA": value}) is True


@pytest.mark.parametrize("value", ["", "0", "false", "No", "off", "  "])
def test_no_or_nothing_leaves_the_tier_optional(value: str) -> None:
    """Unset, empty or a no: a tier that cannot run skips."""
    assert required("PROMETHEUS", {"MODSTREAM_REQUIRE_PROMETHEUS": value}) is False
    assert required("PROMETHEUS", {}) is False


@pytest.mark.parametrize("value", ["2", "ture", "required", "-1"])
def test_any_other_value_is_refused_naming_the_variable(value: str) -> None:
    """A value that is neither yes nor no is an error naming the variable and what it holds."""
    with pytest.raises(ValueError, match=rf"MODSTREAM_REQUIRE_CHROMIUM='{value}'"):
        required("CHROMIUM", {"MODSTREAM_REQUIRE_CHROMIUM": value})


def test_a_tier_that_cannot_run_fails_where_required_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The one decision every tier makes when its tool is missing, with the reason either way."""
    monkeypatch.setenv("MODSTREAM_REQUIRE_PROMETHEUS", "yes")
    with pytest.raises(pytest.fail.Exception, match=r"required here .* but promtool is gone"):
        unavailable("PROMETHEUS", "promtool is gone")
    monkeypatch.setenv("MODSTREAM_REQUIRE_PROMETHEUS", "0")
    with pytest.raises(pytest.skip.Exception, match="prometheus tier skipped: promtool is gone"):
        unavailable("PROMETHEUS", "promtool is gone")


def test_a_variable_naming_no_tier_is_refused() -> None:
    """MODSTREAM_REQUIRE_KAFAK=1 (a typo) must not pass quietly as 'Kafka not required'."""
    with pytest.raises(ValueError, match="MODSTREAM_REQUIRE_KAFAK names no test tier"):
        check_environment({"MODSTREAM_REQUIRE_KAFAK": "1", "MODSTREAM_REQUIRE_KAFKA": "0"})
    check_environment({"MODSTREAM_REQUIRE_KAFKA": "yes", "PATH": "/bin"})  # all well: no error


def test_a_session_with_a_garbled_variable_stops_before_any_test(tmp_path: Path) -> None:
    """pytest itself refuses to start (a usage error, exit status 4) and says why."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only",
         str(ROOT / "tests" / "test_policy.py")],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "MODSTREAM_REQUIRE_KAFKA": "ture",
             "HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 4, done.stdout + done.stderr
    assert "MODSTREAM_REQUIRE_KAFKA='ture'" in done.stderr
