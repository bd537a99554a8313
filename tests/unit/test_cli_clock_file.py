"""The hidden --clock-file option of the tray app: accepted with --speed, refused without."""

from __future__ import annotations

from pathlib import Path

import pytest

from cgmtray import cli


def test_the_clock_file_is_hidden_and_parsed(tmp_path: Path) -> None:
    parser = cli.build_parser()
    assert "--clock-file" not in parser.format_help()
    args = parser.parse_args(["--speed", "60", "--clock-file", str(tmp_path / "clock.json")])
    assert args.clock_file == tmp_path / "clock.json"
    assert parser.parse_args([]).clock_file is None


def test_the_clock_file_needs_a_speed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--clock-file", str(tmp_path / "clock.json")])
    assert exit_info.value.code == 2
    assert "--clock-file needs --speed" in capsys.readouterr().err
