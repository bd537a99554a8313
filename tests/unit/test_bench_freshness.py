"""Smoke test of bench/freshness.py: a 2 h window runs and prints its table and JSON line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench" / "freshness.py"
POLICIES = (
    "cgm-tray",
    "fixed-60s",
    "fixed-150s",
    "fixed-180s",
    "fixed-300s-login",
    "xdrip-follower",
)
FIGURES = (
    "reads_per_reading",
    "signins",
    "latency_p50_s",
    "latency_p95_s",
    "latency_max_s",
    "missed",
)


@pytest.fixture(scope="module")
def bench_output(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The lines `bench/freshness.py --hours 2` prints (run once; the process has ended)."""
    home = tmp_path_factory.mktemp("home")
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    done = subprocess.run(
        [sys.executable, str(BENCH), "--hours", "2"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # a bound on a hang: a stalled machine may take minutes
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout.splitlines()


def test_last_line_is_json_with_every_policy_and_figure(bench_output: list[str]) -> None:
    figures = json.loads(bench_output[-1])
    assert list(figures) == ["policies"]
    assert tuple(figures["policies"]) == POLICIES
    for name in POLICIES:
        row = figures["policies"][name]
        assert tuple(row) == FIGURES, name
        assert all(isinstance(v, int | float) and v >= 0 for v in row.values()), name
        assert isinstance(row["signins"], int)
        assert isinstance(row["missed"], int)
        assert row["latency_p50_s"] <= row["latency_p95_s"] <= row["latency_max_s"], name


def test_table_has_a_row_per_policy(bench_output: list[str]) -> None:
    header = next(line for line in bench_output if line.startswith("policy"))
    for column in ("reads/reading", "sign-ins", "p50 s", "p95 s", "max s", "missed"):
        assert column in header
    for name in POLICIES:
        assert any(line.split()[:1] == [name] for line in bench_output), name


def test_our_policy_misses_no_reading_and_signs_in_rarely(bench_output: list[str]) -> None:
    figures = json.loads(bench_output[-1])["policies"]
    ours = figures["cgm-tray"]
    assert ours["missed"] == 0
    # One sign-in at start and one after the forced session expiry; never one per poll.
    assert ours["signins"] <= 2
    assert figures["fixed-300s-login"]["signins"] > 10 * ours["signins"]
    # Every policy saw some readings: the window is not empty.
    assert all(f["latency_max_s"] > 0 for f in figures.values())


def test_short_window_gives_no_verdict(bench_output: list[str]) -> None:
    assert not any(line.startswith(("PASS", "FAIL")) for line in bench_output)
    assert any("no verdict" in line for line in bench_output)
