"""`cgm-tray now` against hostile Share servers: it ends, exit 5, a plain message, small memory."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

CGM_TRAY = [sys.executable, "-m", "cgmtray"]
EXIT_NETWORK = 5
#: Peak resident memory of the `now` process must stay under this, whatever the server sends.
PEAK_RSS_BOUND_KB = 200 * 1024
#: `now` has a 45 s deadline per request; generous on a busy machine, never a hang.
NOW_TIMEOUT_S = 180

#: Runs the command given as JSON in argv[1] (stdin passed through), then writes its exit
#: code and peak RSS (KiB) as JSON to argv[2]: `now` is this wrapper's only child.
_WRAPPER = """
import json, resource, subprocess, sys
done = subprocess.run(json.loads(sys.argv[1]))
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
with open(sys.argv[2], "w") as out:
    json.dump({"returncode": done.returncode, "peak_kb": peak}, out)
"""


def _headless_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)
    env["HOME"] = str(tmp_path / "home")
    env["XDG_CONFIG_HOME"] = str(tmp_path / "home" / ".config")
    env["XDG_DATA_HOME"] = str(tmp_path / "home" / ".local" / "share")
    return env


@pytest.fixture
def hostile_share(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    process = subprocess.Popen(
        [*CGM_TRAY, "fake-share", "--account", "dave:pa55-word!", "--fault", request.param],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_headless_env(tmp_path),
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout:
            process.stdout.close()


@pytest.mark.parametrize(
    ("hostile_share", "message"),
    [
        ("drip:1", "did not answer in time"),  # 1 byte a second, headers included
        ("endless:600", "far larger than a real one"),  # a chunked body that never ends
        ("huge:500", "far larger than a real one"),  # a 500 MB body
    ],
    indirect=["hostile_share"],
    ids=["drip", "endless", "huge"],
)
def test_now_against_a_hostile_server_ends_with_exit_5_and_a_plain_message(
    hostile_share: str, message: str, tmp_path: Path
) -> None:
    command = [
        *CGM_TRAY,
        "now",
        "--basedir",
        str(tmp_path / "base"),
        "--share-url",
        hostile_share,
        "--username",
        "dave",
        "--password-stdin",
    ]
    report = tmp_path / "now.json"
    result = subprocess.run(
        [sys.executable, "-c", _WRAPPER, json.dumps(command), str(report)],
        input="pa55-word!\n",
        capture_output=True,
        text=True,
        env=_headless_env(tmp_path),
        timeout=NOW_TIMEOUT_S,
        check=False,
    )
    outcome = json.loads(report.read_text(encoding="utf-8"))
    assert outcome["returncode"] == EXIT_NETWORK, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert "pa55-word!" not in result.stderr
    assert outcome["peak_kb"] < PEAK_RSS_BOUND_KB


#: Answers found by fuzzing the transport (tests/unit/test_fuzz_transport.py): a switching-protocols
#: or no-content status with broken chunked framing once crashed `now` with a bare ValueError.
BROKEN_FRAMING = {
    "101-broken-chunks": b"HTTP/1.1 101 Switching Protocols\r\nTransfer-Encoding: chunked\r\n"
    b"\r\nzz\r\n[]\r\n0\r\n\r\n",
    "204-broken-chunks": b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "two-lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n[]",
}


@pytest.fixture
def framing_server(request: pytest.FixtureRequest) -> Iterator[str]:
    """A loopback server that answers every request with the raw bytes of `request.param`."""
    answer = BROKEN_FRAMING[request.param]
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with contextlib.suppress(OSError), connection:
                connection.settimeout(NOW_TIMEOUT_S)
                received = b""
                while b"\r\n\r\n" not in received:
                    data = connection.recv(65536)
                    if not data:
                        break
                    received += data
                connection.sendall(answer)
                connection.shutdown(socket.SHUT_WR)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/ShareWebServices/Services/"
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(NOW_TIMEOUT_S)


@pytest.mark.parametrize("framing_server", sorted(BROKEN_FRAMING), indirect=True)
def test_now_against_broken_framing_exits_5_with_one_line_and_no_traceback(
    framing_server: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [
            *CGM_TRAY,
            "now",
            "--basedir",
            str(tmp_path / "base"),
            "--share-url",
            framing_server,
            "--username",
            "dave",
            "--password-stdin",
        ],
        input="pa55-word!\n",
        capture_output=True,
        text=True,
        env=_headless_env(tmp_path),
        timeout=NOW_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == EXIT_NETWORK, result.stderr
    assert "Traceback" not in result.stderr
    assert "pa55-word!" not in result.stderr
    said = [line for line in result.stderr.splitlines() if line.startswith("cgm-tray:")]
    assert len(said) == 1, result.stderr
    assert "try again" in said[0]
    assert result.stdout == ""
