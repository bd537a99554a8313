"""Renders the app icon's PNG, ICO and ICNS files from the master SVG in resources/ (repeatable)."""

from __future__ import annotations

import argparse
import os
import struct
import sys
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication, QImage, QImageWriter, QPainter
from PySide6.QtSvg import QSvgRenderer

from cgmtray import APP_ID

ROOT = Path(__file__).resolve().parents[1]
RESOURCES = ROOT / "resources"
MASTER_SVG = RESOURCES / f"{APP_ID}.svg"
SYMBOLIC_SVG = RESOURCES / f"{APP_ID}-symbolic.svg"
ICONS = RESOURCES / "icons"
HICOLOR = ICONS / "hicolor"
ASSETS = ROOT / "src" / "cgmtray" / "assets"
RUNTIME_SVG = ASSETS / "app-icon.svg"
RUNTIME_PNG_SIZE = 256
RUNTIME_PNG = ASSETS / f"app-icon-{RUNTIME_PNG_SIZE}.png"
ICO_FILE = ICONS / f"{APP_ID}.ico"
ICNS_FILE = ICONS / f"{APP_ID}.icns"
GALLERY_FILE = ROOT / "docs" / "app-icon.png"

#: The hicolor theme's fixed sizes (freedesktop icon theme spec; what desktops look up first).
HICOLOR_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
#: Windows: every size Explorer, the taskbar and the title bar ask for; all PNG-compressed.
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
#: macOS: the PNG-holding ICNS element types and their pixel sizes.
ICNS_TYPES: tuple[tuple[bytes, int], ...] = (
    (b"icp4", 16),
    (b"icp5", 32),
    (b"icp6", 64),
    (b"ic07", 128),
    (b"ic08", 256),
    (b"ic09", 512),
    (b"ic10", 1024),
)


def hicolor_png(size: int) -> Path:
    """Where the hicolor PNG of one size lives."""
    return HICOLOR / f"{size}x{size}" / "apps" / f"{APP_ID}.png"


def hicolor_scalable() -> Path:
    return HICOLOR / "scalable" / "apps" / f"{APP_ID}.svg"


def hicolor_symbolic() -> Path:
    return HICOLOR / "symbolic" / "apps" / f"{APP_ID}-symbolic.svg"


def render_image(svg: bytes, size: int) -> QImage:
    """The SVG drawn onto a transparent square image of `size` pixels."""
    renderer = QSvgRenderer(QByteArray(svg))
    if not renderer.isValid():
        raise ValueError("the SVG does not parse")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    return image


def png_bytes(image: QImage) -> bytes:
    """The image as PNG (straight alpha, maximum compression)."""
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QImageWriter(buffer, QByteArray(b"png"))
    writer.setQuality(0)  # for PNG: the smallest file, lossless as always
    if not writer.write(image.convertToFormat(QImage.Format.Format_ARGB32)):
        raise OSError(f"Qt could not encode a PNG: {writer.errorString()}")
    return bytes(buffer.data().data())


def ico_bytes(pngs: Sequence[tuple[int, bytes]]) -> bytes:
    """A Windows .ico holding one PNG-compressed entry per (size, png)."""
    header = struct.pack("<HHH", 0, 1, len(pngs))
    directory = b""
    offset = len(header) + 16 * len(pngs)
    for size, png in pngs:
        side = 0 if size >= 256 else size  # 0 stands for 256 in the one-byte fields
        directory += struct.pack("<BBBBHHII", side, side, 0, 0, 1, 32, len(png), offset)
        offset += len(png)
    return header + directory + b"".join(png for _, png in pngs)


def icns_bytes(elements: Sequence[tuple[bytes, bytes]]) -> bytes:
    """A macOS .icns holding one PNG element per (type, png); lengths include the 8-byte headers."""
    body = b"".join(kind + struct.pack(">I", 8 + len(png)) + png for kind, png in elements)
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def write_if_changed(path: Path, data: bytes) -> bool:
    """Writes the file only when its content differs; True when it wrote."""
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return True


def build_outputs() -> dict[Path, bytes]:
    """Every generated file and its content, rendered from the two master SVGs."""
    master = MASTER_SVG.read_bytes()
    symbolic = SYMBOLIC_SVG.read_bytes()
    wanted = sorted({*HICOLOR_SIZES, *ICO_SIZES, *(size for _, size in ICNS_TYPES)})
    pngs = {size: png_bytes(render_image(master, size)) for size in wanted}
    outputs: dict[Path, bytes] = {hicolor_png(size): pngs[size] for size in HICOLOR_SIZES}
    outputs[hicolor_scalable()] = master
    outputs[hicolor_symbolic()] = symbolic
    outputs[ICO_FILE] = ico_bytes([(size, pngs[size]) for size in ICO_SIZES])
    outputs[ICNS_FILE] = icns_bytes([(kind, pngs[size]) for kind, size in ICNS_TYPES])
    outputs[RUNTIME_SVG] = master
    outputs[RUNTIME_PNG] = pngs[RUNTIME_PNG_SIZE]
    return outputs


def _tinted(image: QImage, colour: str) -> QImage:
    """A single-colour image keeps its alpha and takes `colour`, as desktops recolour symbolics."""
    tinted = image.copy()
    painter = QPainter(tinted)
    painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceIn)
    painter.fillRect(tinted.rect(), QColor(colour))
    painter.end()
    return tinted


def gallery_image() -> QImage:
    """Every size side by side on light and dark panels; 16 to 32 px and the symbolic icon also
    magnified 4x (nearest pixel), to judge them pixel by pixel."""
    master = MASTER_SVG.read_bytes()
    symbolic = SYMBOLIC_SVG.read_bytes()
    zoom = 4
    panels = (("light", "#f6f5f4", "#241f31"), ("dark", "#1e1e1e", "#f6f5f4"))
    # (caption, which SVG, rendered size, magnification)
    columns: list[tuple[str, bytes, int, int]] = [
        *((f"{size}", master, size, 1) for size in (16, 22, 24, 32, 48, 64, 128, 256)),
        *((f"{size} x{zoom}", master, size, zoom) for size in (16, 22, 24, 32)),
        ("symbolic", symbolic, 16, 1),
        (f"symbolic x{zoom}", symbolic, 16, zoom),
    ]
    gap, label_w, top = 28, 64, 30
    row_h = max(size * scale for _, _, size, scale in columns) + 2 * gap
    width = label_w + sum(max(size * scale, 84) + gap for _, _, size, scale in columns)
    image = QImage(width, top + row_h * len(panels), QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(QColor("#ffffff"))
    painter = QPainter(image)
    font = QFont("DejaVu Sans")
    font.setPixelSize(12)
    painter.setFont(font)
    x = float(label_w)
    for caption, svg, size, scale in columns:
        cell = max(size * scale, 84)
        painter.setPen(QColor("#241f31"))
        painter.drawText(QRectF(x, 0, cell, top), int(Qt.AlignmentFlag.AlignCenter), caption)
        for row, (name, background, ink) in enumerate(panels):
            y0 = top + row * row_h
            if x == label_w:
                painter.fillRect(QRectF(0, y0, width, row_h), QColor(background))
                painter.setPen(QColor(ink))
                painter.drawText(QPointF(12, y0 + row_h / 2), name)
            drawn = render_image(svg, size)
            if svg is symbolic:
                drawn = _tinted(drawn, ink)
            if scale > 1:
                drawn = drawn.scaled(
                    size * scale, size * scale, mode=Qt.TransformationMode.FastTransformation
                )
            side = size * scale
            painter.drawImage(QPointF(x + (cell - side) / 2, y0 + (row_h - side) / 2), drawn)
        x += cell + gap
    painter.end()
    return image


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--gallery",
        type=Path,
        nargs="?",
        const=GALLERY_FILE,
        default=None,
        help=f"also write a gallery of every size on light and dark (default {GALLERY_FILE})",
    )
    args = parser.parse_args(argv)
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    written = [path for path, data in build_outputs().items() if write_if_changed(path, data)]
    if args.gallery is not None:
        gallery = png_bytes(gallery_image())
        if write_if_changed(args.gallery, gallery):
            written.append(args.gallery)
    for path in written:
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        sys.stdout.write(f"wrote {shown}\n")
    if not written:
        sys.stdout.write("icons up to date\n")
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
