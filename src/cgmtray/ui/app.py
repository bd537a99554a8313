"""The tray app's start and end: QApplication identity, wiring, signals, excepthook, clean quit."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import secrets
import signal
import socket
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from PySide6.QtCore import (
    QMessageLogContext,
    QSocketNotifier,
    Qt,
    QTimer,
    QtMsgType,
    qInstallMessageHandler,
)
from PySide6.QtWidgets import QApplication, QMessageBox

from cgmtray import APP_ID, APP_NAME, __version__, logging_setup
from cgmtray.domain.alert_config import AlertSettings
from cgmtray.domain.clock import Clock, shared_clock
from cgmtray.domain.readings import Reading
from cgmtray.domain.units import Unit
from cgmtray.share.client import ClientConfig, ShareClient
from cgmtray.share.regions import Region
from cgmtray.storage import paths as app_paths
from cgmtray.storage.credentials import CredentialStore, CredentialStoreError
from cgmtray.storage.history import HistoryError, HistoryStore
from cgmtray.storage.settings import Settings, load_settings
from cgmtray.ui.controller import RECENT_SPAN, Controller, ViewSettings
from cgmtray.ui.notifier import NotificationRequest, Notifier
from cgmtray.ui.sound import AlarmSound
from cgmtray.ui.tray import TrayPresenter
from cgmtray.ui.worker import ShareWorker, WorkerThread

if TYPE_CHECKING:
    from cgmtray.ui.history_window import HistoryOpener

log = logging.getLogger(__name__)

#: The history window is made this long after start, off the critical path of the tray icon.
HISTORY_PREPARE_MS = 3000
#: Quit waits at most this long for the worker before exiting anyway (committed data is safe).
QUIT_WAIT_MS = 1500


@dataclass(frozen=True)
class Account:
    """Everything needed to make a ShareClient, and how fast the clock runs."""

    config: ClientConfig
    password: str
    clock: Clock
    time_scale: float
    settings: Settings


class StartupProblem(Exception):  # noqa: N818 - a message for the person, not a bug
    """Something the person has to fix before the app can fetch readings."""


def run(args: argparse.Namespace) -> int:
    """Runs the tray app until Quit; returns the process exit status."""
    paths = app_paths.ensure(app_paths.app_paths(args.basedir))
    logging_setup.configure(json_lines=args.log_json, debug=args.debug, log_file=paths.log_file)
    app = _make_application()
    _install_excepthook()
    with _signals_quit(app), contextlib.ExitStack() as stack:
        try:
            account = _demo_account(stack, args) if args.demo else _saved_account(args, paths)
        except StartupProblem as problem:
            log.error("cannot start: %s", problem)
            QMessageBox.critical(None, APP_NAME, str(problem))
            return 2
        store_dir = Path(stack.enter_context(tempfile.TemporaryDirectory())) if args.demo else None
        history_path = (store_dir / "history.sqlite3") if store_dir else paths.history_db
        state_file = paths.config_dir / "window-state.ini"
        controller = _assemble(app, account, history_path, state_file, args)
        log.info(
            "CGM Tray started",
            extra={"event": "app.started", "version": __version__, "demo": bool(args.demo)},
        )
        controller.quit_requested.connect(lambda: app.exit(0))
        controller.start()
        code = app.exec()
        log.info("CGM Tray stopping", extra={"event": "app.stopping"})
        finished = controller.stop()
        if not finished:
            logging.shutdown()
            os._exit(code)  # a request is still in flight: its thread must not delay the exit
        return code


def _route_qt_messages() -> None:
    """Qt's own messages go through our logging (so --log-json stays JSON), at debug level
    unless Qt calls them critical or fatal."""
    qt_log = logging.getLogger("qt")
    levels = {
        QtMsgType.QtDebugMsg: logging.DEBUG,
        QtMsgType.QtInfoMsg: logging.DEBUG,
        QtMsgType.QtWarningMsg: logging.DEBUG,
        QtMsgType.QtCriticalMsg: logging.WARNING,
        QtMsgType.QtFatalMsg: logging.ERROR,
    }

    def handler(kind: QtMsgType, context: QMessageLogContext, message: str) -> None:
        qt_log.log(
            levels.get(kind, logging.DEBUG), "%s", message, extra={"category": context.category}
        )

    qInstallMessageHandler(handler)


def _make_application() -> QApplication:
    _route_qt_messages()
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setApplicationName("cgm-tray")
    app.setApplicationDisplayName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setOrganizationDomain("cgmtray.github.io")
    app.setDesktopFileName(APP_ID)
    app.setQuitOnLastWindowClosed(False)
    return app


class LazyHistory:
    """The history window, made on first use (or at idle after start-up), so that importing
    pyqtgraph never delays the tray icon. Reads the store read-only on the GUI thread."""

    def __init__(self, history_path: Path, clock: Clock, settings: Settings, state_file: Path):
        self._path = history_path
        self._clock = clock
        self._view = (settings.unit, settings.alerts)
        self._state_file = state_file
        self._store: HistoryStore | None = None
        self._opener: HistoryOpener | None = None

    def _get(self) -> HistoryOpener:
        if self._opener is None:
            from PySide6.QtCore import QSettings

            from cgmtray.ui.history_window import HistoryOpener, HistoryWindow

            def make_window() -> HistoryWindow:
                self._store = HistoryStore(self._path, read_only=True)
                return HistoryWindow(
                    self._store,
                    clock=self._clock,
                    unit=self._view[0],
                    alerts=self._view[1],
                    settings_store=QSettings(str(self._state_file), QSettings.Format.IniFormat),
                )

            self._opener = HistoryOpener(make_window)
        return self._opener

    def prepare(self) -> None:
        try:
            self._get().prepare()
        except Exception:
            log.exception("the history window could not be prepared")

    def open(self) -> None:
        self._get().open()

    def add_readings(self, readings: tuple[Reading, ...]) -> None:
        if self._opener is not None:
            self._opener.add_readings(readings)

    def apply_view(self, unit: Unit, alerts: AlertSettings) -> None:
        self._view = (unit, alerts)
        if self._opener is not None:
            self._opener.apply_view(unit, alerts)

    def close(self) -> None:
        if self._opener is not None:
            self._opener.close()
        if self._store is not None:
            self._store.close()
            self._store = None


def _assemble(
    app: QApplication,
    account: Account,
    history_path: Path,
    state_file: Path,
    args: argparse.Namespace,
) -> Controller:
    stored: list[Reading] = []
    newest = None
    try:
        with HistoryStore(history_path) as store:
            newest = store.newest_time()
            if newest is not None:
                stored = store.range(newest - RECENT_SPAN, newest + RECENT_SPAN)
    except HistoryError as error:
        log.warning("the history store is unusable (%s); starting without history", error)

    def client_factory() -> ShareClient:
        return ShareClient(account.config, account.password, clock=account.clock)

    tray = TrayPresenter(force_status_window=getattr(args, "status_window", False), parent=app)
    sound = AlarmSound(parent=app)

    def to_status_window(request: NotificationRequest) -> None:
        tray.show_status_message(request.title, request.body)

    notifier = Notifier(tray=tray.tray, status_sink=to_status_window, sound=sound, parent=app)
    worker = ShareWorker(
        client_factory,
        clock=account.clock,
        store_path=str(history_path),
        newest_known=newest,
        time_scale=account.time_scale,
        seed=secrets.randbelow(2**31),  # installs must not poll in step
    )
    settings = account.settings
    history = LazyHistory(history_path, account.clock, settings, state_file)
    controller = Controller(
        clock=account.clock,
        tray=tray,
        notifier=notifier,
        worker=WorkerThread(worker),
        view=ViewSettings(unit=settings.unit, alerts=settings.alerts),
        stored=stored,
        time_scale=account.time_scale,
        history=history,
        open_about=_about_opener(),
    )
    app.aboutToQuit.connect(history.close)
    QTimer.singleShot(HISTORY_PREPARE_MS, history.prepare)
    return controller


def _demo_account(stack: contextlib.ExitStack, args: argparse.Namespace) -> Account:
    from cgmtray.fakeshare.demo import DemoService

    speed = float(getattr(args, "speed", None) or 1.0)
    demo = stack.enter_context(DemoService(speed=speed))
    config = ClientConfig(region=demo.region, username=demo.username, base_url=demo.base_url)
    return Account(config, demo.password, demo.clock, speed, Settings(username=demo.username))


def _saved_account(args: argparse.Namespace, paths: app_paths.AppPaths) -> Account:
    loaded = load_settings(paths.settings_file)
    if loaded.problem:
        log.warning("settings: %s", loaded.problem)
    settings = loaded.settings
    if not settings.username:
        raise StartupProblem(
            "No Dexcom account is set up yet. Add your region and username to "
            f"{paths.settings_file} (a settings window is coming), or try `cgm-tray --demo`."
        )
    region = Region(settings.region)
    password = _password(args, region, settings.username)
    logging_setup.register_secret(password)
    logging_setup.register_secret(settings.username)
    share_url = args.share_url or settings.share_url
    config = ClientConfig(
        region=region,
        username=settings.username,
        base_url=share_url,
        account_id=settings.account_id,
    )
    speed = float(getattr(args, "speed", None) or 1.0)
    epoch = getattr(args, "clock_epoch", None) or datetime.now(UTC)
    return Account(config, password, shared_clock(speed, epoch), speed, settings)


def _password(args: argparse.Namespace, region: Region, username: str) -> str:
    if getattr(args, "password_stdin", False):
        password = sys.stdin.readline().rstrip("\r\n")
        if password:
            return password
        raise StartupProblem("No password on standard input.")
    try:
        password = CredentialStore().get(region.value, username)
    except CredentialStoreError as error:
        raise StartupProblem(f"The system keyring could not be read: {error}") from None
    if not password:
        raise StartupProblem(
            "No password is saved in the system keyring for this account. Start with "
            "--password-stdin, or save it with the settings window."
        )
    return password


def _about_opener() -> Callable[[], None]:
    def show_about() -> None:
        box = QMessageBox()
        box.setWindowTitle(f"About {APP_NAME}")
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(
            f"<b>{APP_NAME}</b> {__version__}<br>Your Dexcom CGM reading, always in sight."
            "<p>Not a medical device. Readings come from Dexcom Share and can be late or "
            "missing: use your receiver or the Dexcom app for treatment decisions.</p>"
        )
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    return show_about


@contextlib.contextmanager
def _signals_quit(app: QApplication) -> Iterator[None]:
    """SIGINT and SIGTERM quit the app cleanly, without a polling timer (wakeup fd + notifier)."""
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    previous_fd = signal.set_wakeup_fd(writer.fileno())
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    notifier = QSocketNotifier(reader.fileno(), QSocketNotifier.Type.Read)

    def on_signal() -> None:
        with contextlib.suppress(OSError):
            reader.recv(64)
        log.info("signal received: quitting")
        # exit(), not quit(): Qt 6's quit() first asks every window to close, and the status
        # window refuses (closing it must not quit the app), which would cancel the quit.
        app.exit(0)

    notifier.activated.connect(on_signal)
    try:
        yield
    finally:
        notifier.setEnabled(False)
        signal.set_wakeup_fd(previous_fd)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        reader.close()
        writer.close()


def _install_excepthook() -> None:
    """An unexpected error is logged (scrubbed of secrets) and the app keeps running."""

    def hook(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
        text = "".join(traceback.format_exception(kind, error, trace))
        log.error("unexpected error:\n%s", logging_setup.redact(text))

    sys.excepthook = hook
