"""`make package`: the wheel and sdist into dist/, the frozen one-folder app, and its smoke runs."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

# mypy names packaging/*.py by their path; run as a script, this folder is on sys.path.
if TYPE_CHECKING:
    from packaging import freeze_config as fc
else:
    import freeze_config as fc

from cgmtray import __version__

DIST = fc.ROOT / "dist"
WORK = fc.ROOT / "build" / "pyinstaller"
#: A smoke run that takes longer than this is a hang, not a slow machine.
SMOKE_TIMEOUT_S = 120


class BuildError(Exception):
    """A step failed; the message says which and why."""


def say(text: str) -> None:
    sys.stdout.write(f"package: {text}\n")
    sys.stdout.flush()


def run(
    argv: Sequence[str],
    what: str,
    *,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Runs a step of the build; BuildError with its output if it fails."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and the frozen app, no shell
        list(argv),
        cwd=fc.ROOT,
        env=env,
        timeout=timeout,
        text=True,
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise BuildError(f"{what} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def build_wheel_and_sdist() -> list[Path]:
    for old in [*DIST.glob("cgm_tray-*.whl"), *DIST.glob("cgm_tray-*.tar.gz")]:
        old.unlink()
    run([sys.executable, "-m", "build", "--outdir", str(DIST), "."], "python -m build")
    made = sorted([*DIST.glob("cgm_tray-*.whl"), *DIST.glob("cgm_tray-*.tar.gz")])
    if len(made) != 2:
        raise BuildError(f"python -m build made {[p.name for p in made]}, not a wheel and an sdist")
    return made


def build_frozen(*, clean: bool) -> Path:
    """PyInstaller on the spec (which stops at once if an icon or desktop file is missing)."""
    argv = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--log-level",
        "WARN",
        "--distpath",
        str(DIST),
        "--workpath",
        str(WORK),
    ]
    if clean:
        argv.append("--clean")
    run([*argv, str(fc.ROOT / "packaging" / "cgm-tray.spec")], "PyInstaller")
    return fc.frozen_cli(fc.platform_of(sys.platform), DIST)


def isolated_env(home: Path) -> dict[str, str]:
    """The frozen app's environment for smoke runs: a throwaway home, no display, no keyring."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS")
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_STATE_HOME=str(home / ".local" / "state"),
        QT_QPA_PLATFORM="offscreen",
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    return env


def smoke(cli: Path) -> None:
    """The frozen app starts, knows its version, and fetches a reading from the demo service."""
    with tempfile.TemporaryDirectory(prefix="cgmtray-smoke-") as home:
        env = isolated_env(Path(home))
        basedir = str(Path(home) / "base")
        version = run([str(cli), "--version"], "--version", env=env, timeout=SMOKE_TIMEOUT_S)
        if version.stdout.strip() != f"cgm-tray {__version__}":
            raise BuildError(f"frozen --version printed {version.stdout!r}, not {__version__}")
        now = run(
            [str(cli), "now", "--demo", "--json", "--basedir", basedir],
            "now --demo --json",
            env=env,
            timeout=SMOKE_TIMEOUT_S,
        )
        try:
            reading = json.loads(now.stdout)
        except ValueError:
            reading = {}
        if "value_mgdl" not in reading:
            raise BuildError(f"frozen `now --demo --json` printed no reading: {now.stdout!r}")
    say(f"smoke runs passed: {version.stdout.strip()}; now --demo: {reading['value_mgdl']} mg/dL")


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-frozen", action="store_true", help="only the wheel and the sdist")
    parser.add_argument("--clean", action="store_true", help="empty PyInstaller's cache first")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        for artefact in build_wheel_and_sdist():
            say(f"built dist/{artefact.name} ({artefact.stat().st_size / 1e6:.1f} MB)")
        if not args.no_frozen:
            frozen_started = time.monotonic()
            cli = build_frozen(clean=args.clean)
            folder = fc.frozen_folder(fc.platform_of(sys.platform), DIST)
            say(
                f"built {folder.relative_to(fc.ROOT)} ({folder_size(folder) / 1e6:.0f} MB) "
                f"in {time.monotonic() - frozen_started:.0f} s"
            )
            smoke(cli)
    except (BuildError, subprocess.TimeoutExpired) as error:
        say(f"FAILED: {error}")
        return 1
    say(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
