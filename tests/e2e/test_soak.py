"""The soak, short form: the real tray app through a simulated day of Share faults (bench/soak.py
runs it longer); prints its figures and asserts each must-be-zero one."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from bench.soakday import Act, short_day
from bench.soakfigures import VERDICT_KEYS, figures, report
from bench.soaklib import DEFAULT_SPEED, run_day
from tests.support.secrets import assert_no_secrets

from cgmtray.storage.paths import app_paths

pytestmark = pytest.mark.e2e

SEED = 1


def test_a_short_simulated_day_of_faults_loses_nothing_and_keeps_every_promise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    day = short_day()
    assert {step.act for step in day.steps} == set(Act)  # every kind of trouble is in it
    record = run_day(day, tmp_path / "soak", seed=SEED, speed=DEFAULT_SPEED)
    found = figures(record)
    printed = io.StringIO()
    report(record, found, printed)
    with capsys.disabled():
        print("\n" + printed.getvalue(), end="")

    assert record.problems == []
    assert len(record.runs) == 3  # the first start and the person's two restarts
    assert [label for _at, label in record.done] == [step.label for step in day.steps]
    assert found.held_readings > 100
    assert found.expected_episodes["urgent_low"] == 2
    verdict = found.verdict()
    assert list(verdict) == list(VERDICT_KEYS)
    assert verdict == dict.fromkeys(VERDICT_KEYS, 0), found.notes
    assert found.unexpected_alerts == 0, found.notes
    assert found.alert_counts[("high", "raise")] == 1
    assert printed.getvalue().splitlines()[-1] == (
        '{"crashes": 0, "lost_readings": 0, "budget_exceeded": 0, '
        '"signins_after_rejection": 0, "missed_urgent_lows": 0, "duplicate_episodes": 0}'
    )

    # Nothing the app wrote or printed through the whole day holds a password (the first one and
    # the one the person changed to), a session id or the account id the fake issued.
    assert len(record.passwords) == 2
    assert len(record.issued_ids) >= 5  # an account id and a session per sign-in
    assert record.app_basedir is not None
    secrets = {f"password {n}": p for n, p in enumerate(record.passwords, 1)}
    secrets |= {f"issued id {n}": i for n, i in enumerate(record.issued_ids, 1)}
    searched = assert_no_secrets(
        secrets,
        roots=[record.app_basedir],
        texts={f"app run {n} output": run.printed for n, run in enumerate(record.runs, 1)},
    )
    files = app_paths(record.app_basedir)
    for written in (files.settings_file, files.history_db, files.log_file):
        assert str(written.absolute()) in searched.searched
