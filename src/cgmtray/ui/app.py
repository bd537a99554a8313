"""The tray app's process: identity and icon, Qt messages, signals, excepthook, clean exit."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib.resources
import logging
import os
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import (
    QByteArray,
    QMessageLogContext,
    QRectF,
    QSocketNotifier,
    Qt,
    QtMsgType,
    qInstallMessageHandler,
)
from PySide6.QtGui import QIcon, QImage, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QApplication

from cgmtray import APP_ID, APP_NAME, __version__, logging_setup
from cgmtray.storage import paths as app_paths
from cgmtray.storage.safe_open import PRIVATE_UMASK, UnsafeFileError, check_not_link
from cgmtray.ui import notifier
from cgmtray.ui.session import AppSession
from cgmtray.ui.single_instance import ASK_PRESENT, LOCK_FILE_NAME, Claim, SingleInstance

log = logging.getLogger(__name__)

#: Where the app icon ships (the wheel and the frozen app both carry cgmtray/assets).
ICON_PACKAGE = "cgmtray.assets"
ICON_SVG = "app-icon.svg"
ICON_FALLBACK_PNG = "app-icon-256.png"
#: Sizes the app icon is drawn at for title bars, task switchers, docks and dialogs.
APP_ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256)


#: Exit status of a second start when the running instance does not answer (EX_TEMPFAIL).
EXIT_INSTANCE_NOT_ANSWERING = 75
#: Exit status when the instance lock file is a symlink (EX_NOPERM): it is not followed.
EXIT_UNSAFE_LOCK = 77


def run(args: argparse.Namespace) -> int:
    """Runs the tray app until Quit; returns the process exit status.

    One instance per data folder: a second start asks the first to show itself and exits 0,
    before it signs in, reads the keyring or shows anything.
    """
    if os.name == "posix":
        # A second guard beside the explicit modes: whatever the app (or Qt) creates is
        # owner-only, e.g. the instance lock file.
        os.umask(PRIVATE_UMASK)
    paths = app_paths.app_paths(args.basedir)
    # The log file is the instance's: a second start logs to stderr only.
    logging_setup.configure(json_lines=args.log_json, debug=args.debug)
    # A read-only, full or foreign folder is said (stderr and, later, the status line), and the
    # app runs from memory: never a traceback.
    notices = app_paths.prepare(paths)
    for notice in notices:
        log.warning("%s", notice, extra={"event": "files.folder_unusable"})
    lock_path = paths.data_dir / LOCK_FILE_NAME
    try:
        check_not_link(lock_path)
    except UnsafeFileError as error:
        sys.stderr.write(
            f"cgm-tray: the instance lock {lock_path} is {error.what}; CGM Tray does not "
            "follow it, so this start stops here. Remove it and start again.\n"
        )
        log.error("instance lock refused", extra={"event": "files.lock_refused"})
        return EXIT_UNSAFE_LOCK
    app = _make_application()
    instance = SingleInstance(paths.data_dir)
    try:
        claim = instance.claim({"ask": ASK_PRESENT, "pid": os.getpid()})
        if claim is not Claim.OWNER and claim is not Claim.UNGUARDED:
            return _second_start(claim, paths.data_dir)
        log_problem = logging_setup.configure(
            json_lines=args.log_json, debug=args.debug, log_file=paths.log_file
        )
        _install_excepthook()
        with _signals_quit(app), contextlib.ExitStack() as stack:
            session = AppSession(args, paths, stack)
            for notice in [*notices, *([log_problem] if log_problem else [])]:
                session.add_notice(notice)
            session.quit_requested.connect(lambda: app.exit(0))
            instance.asked.connect(lambda message: _present(session, message))
            log.info("starting", extra={"event": "app.starting", "version": __version__})
            session.begin()
            code = app.exec()
            log.info("CGM Tray stopping", extra={"event": "app.stopping"})
            finished = session.stop()
            if not finished:
                instance.release()
                logging.shutdown()
                os._exit(code)  # a request is still in flight: its thread must not delay the exit
            return code
    finally:
        instance.release()


def _second_start(claim: Claim, data_dir: Path) -> int:
    """Another process is the instance: it was asked to show itself, or it does not answer."""
    if claim is Claim.HANDED_OVER:
        log.info("CGM Tray is already running: showing it", extra={"event": "app.handover"})
        return 0
    log.info(
        "another CGM Tray holds the data folder but does not answer",
        extra={"event": "app.instance_not_answering"},
    )
    sys.stderr.write(
        f"cgm-tray: CGM Tray is already running for {data_dir} but does not answer, so this "
        "start stops here. If it stays stuck, end that one (or log out) and start again.\n"
    )
    return EXIT_INSTANCE_NOT_ANSWERING


def _present(session: AppSession, message: dict[str, object]) -> None:
    """A second start asked: show the running app, and say what was shown."""
    shown = session.present()
    pid = message.get("pid")
    log.info(
        "shown to a second start",
        extra={
            "event": "app.presented",
            "shown": shown,
            "asker_pid": pid if isinstance(pid, int) else None,
        },
    )


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
    set_identity(app)
    app.setQuitOnLastWindowClosed(False)
    return app


def set_identity(app: QApplication) -> None:
    """Names, version, app id (the .desktop basename, so desktops match windows to the launcher)
    and the icon every window shows. The application name is the product's name: Qt gives it
    as the StatusNotifierItem's Title (panels list the item by it) and as the X11 window class."""
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setOrganizationDomain("cgmtray.github.io")
    app.setDesktopFileName(APP_ID)
    app.setWindowIcon(app_icon())


def app_icon() -> QIcon:
    """The app icon at every size of APP_ICON_SIZES, drawn from the packaged SVG; the packaged PNG
    when the SVG cannot be drawn; an empty icon (and a warning) when neither loads."""
    assets = importlib.resources.files(ICON_PACKAGE)
    icon = QIcon()
    try:
        renderer = QSvgRenderer(QByteArray((assets / ICON_SVG).read_bytes()))
    except OSError as error:
        log.warning("app icon SVG unreadable: %s", error)
    else:
        if renderer.isValid():
            for size in APP_ICON_SIZES:
                icon.addPixmap(QPixmap.fromImage(_drawn(renderer, size)))
            return icon
    fallback = QPixmap()
    try:
        loaded = fallback.loadFromData((assets / ICON_FALLBACK_PNG).read_bytes(), "PNG")
    except OSError:
        loaded = False
    if loaded:
        icon.addPixmap(fallback)
    else:
        log.warning("app icon unavailable: windows show the platform's default icon")
    return icon


def _drawn(renderer: QSvgRenderer, size: int) -> QImage:
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    return image


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
    """An unexpected error is logged (scrubbed of secrets) and the app keeps running; errors
    on other threads too (Python's default for those prints them unscrubbed).

    A fatal end (an exception escaping run(), e.g. during quit, or sys.exit from anywhere) still
    closes the notifications the app shows, at interpreter exit (notifier.shutdown_all: bounded,
    idempotent, a no-op after a clean quit). A hard kill cannot: the next start closes those.
    """

    def hook(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
        text = "".join(traceback.format_exception(kind, error, trace))
        log.error("unexpected error:\n%s", logging_setup.redact(text))

    def thread_hook(failed: threading.ExceptHookArgs) -> None:
        if failed.exc_value is not None:
            hook(failed.exc_type, failed.exc_value, failed.exc_traceback)

    sys.excepthook = hook
    threading.excepthook = thread_hook
    atexit.unregister(_close_notifications_at_exit)  # once, however often it is installed
    atexit.register(_close_notifications_at_exit)


def _close_notifications_at_exit() -> None:
    """Last resort at interpreter exit: every notifier still live closes what it shows."""
    notifier.shutdown_all()
