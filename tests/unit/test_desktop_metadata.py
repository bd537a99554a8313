"""The desktop integration files: the .desktop entry, AppStream metainfo and the rendered icons."""

from __future__ import annotations

import configparser
import os
import shutil
import struct
import subprocess
import tomllib
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

import cgmtray
from cgmtray import APP_ID

ROOT: Final = Path(__file__).resolve().parents[2]
RESOURCES: Final = ROOT / "resources"
DESKTOP_FILE: Final = RESOURCES / f"{APP_ID}.desktop"
METAINFO_FILE: Final = RESOURCES / f"{APP_ID}.metainfo.xml"
MASTER_SVG: Final = RESOURCES / f"{APP_ID}.svg"
SYMBOLIC_SVG: Final = RESOURCES / f"{APP_ID}-symbolic.svg"
ICONS: Final = RESOURCES / "icons"
HICOLOR: Final = ICONS / "hicolor"
ASSETS: Final = ROOT / "src" / "cgmtray" / "assets"
SCREENSHOTS: Final = ROOT / "docs" / "screenshots"
SCREENSHOT_URL_PREFIX: Final = (
    "https://raw.githubusercontent.com/cgmtray/cgm-tray/main/docs/screenshots/"
)
HICOLOR_SIZES: Final = (16, 22, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES: Final = (16, 24, 32, 48, 64, 128, 256)
ICNS_SIZES: Final = {
    "icp4": 16,
    "icp5": 32,
    "icp6": 64,
    "ic07": 128,
    "ic08": 256,
    "ic09": 512,
    "ic10": 1024,
}
PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
SVG_NS: Final = "{http://www.w3.org/2000/svg}"


def _pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _project_table() -> dict[str, object]:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    return project


def _console_scripts() -> set[str]:
    scripts = _project_table()["scripts"]
    assert isinstance(scripts, dict)
    return set(scripts)


def _desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(DESKTOP_FILE.read_text(encoding="utf-8"))
    return parser["Desktop Entry"]


def _metainfo() -> ET.Element:
    return ET.fromstring(METAINFO_FILE.read_bytes())  # noqa: S314 - our own file


def _tool(name: str, package: str) -> str:
    """The tool's path; a missing tool fails the test (it is a declared system dependency)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: install the Debian package {package} "
            "(scripts/install-sysdeps.sh does, and `make test` runs it)"
        )
    return path


def _private_env(home: Path) -> dict[str, str]:
    """The environment for the validators, with a throwaway home and caches."""
    return {
        **os.environ,
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "LC_ALL": "C.UTF-8",
    }


# --- tiny readers for PNG, ICO and ICNS ---------------------------------------------------------


@dataclass(frozen=True)
class PngHeader:
    width: int
    height: int
    bit_depth: int
    colour_type: int
    interlace: int


def png_header(data: bytes) -> PngHeader:
    """The IHDR of a PNG (which must be its first chunk)."""
    assert data[:8] == PNG_SIGNATURE, "not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    return PngHeader(width, height, depth, colour, interlace)


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks: list[tuple[bytes, bytes]] = []
    offset = 8
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        chunks.append((kind, body))
        offset += 12 + length
    assert chunks[-1][0] == b"IEND"
    return chunks


def _paeth(left: int, up: int, up_left: int) -> int:
    estimate = left + up - up_left
    to_left, to_up, to_up_left = abs(estimate - left), abs(estimate - up), abs(estimate - up_left)
    if to_left <= to_up and to_left <= to_up_left:
        return left
    return up if to_up <= to_up_left else up_left


def png_alpha_row(data: bytes, row: int) -> bytes:
    """The alpha values of one row of an 8-bit RGBA, non-interlaced PNG."""
    header = png_header(data)
    assert (header.bit_depth, header.colour_type, header.interlace) == (8, 6, 0)
    pixels = zlib.decompress(b"".join(body for kind, body in _png_chunks(data) if kind == b"IDAT"))
    stride = header.width * 4
    previous = bytearray(stride)
    for index in range(row + 1):
        start = index * (stride + 1)
        kind, line = pixels[start], bytearray(pixels[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - 4] if i >= 4 else 0
            up_left = previous[i - 4] if i >= 4 else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + previous[i]) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + previous[i]) // 2) & 0xFF
            elif kind == 4:
                line[i] = (line[i] + _paeth(left, previous[i], up_left)) & 0xFF
            else:
                assert kind == 0, f"unknown PNG filter {kind}"
        previous = line
    return bytes(previous[3::4])


@dataclass(frozen=True)
class IcoEntry:
    width: int
    height: int
    bits_per_pixel: int
    data: bytes


def read_ico(data: bytes) -> list[IcoEntry]:
    """The entries of a Windows .ico (ICONDIR, then 16-byte ICONDIRENTRYs, then the images)."""
    reserved, kind, count = struct.unpack("<HHH", data[:6])
    assert (reserved, kind) == (0, 1), "not an icon file"
    entries: list[IcoEntry] = []
    ends = 6 + 16 * count
    for index in range(count):
        fields = struct.unpack("<BBBBHHII", data[6 + 16 * index : 22 + 16 * index])
        width, height, _colours, _reserved, planes, bits, size, offset = fields
        assert planes in (0, 1)
        assert offset >= ends, "an image overlaps the directory"
        assert offset + size <= len(data), "an image runs past the end of the file"
        entries.append(IcoEntry(width or 256, height or 256, bits, data[offset : offset + size]))
    return entries


def read_icns(data: bytes) -> list[tuple[str, bytes]]:
    """The (type, payload) elements of a macOS .icns."""
    magic, total = struct.unpack(">4sI", data[:8])
    assert magic == b"icns"
    assert total == len(data)
    elements: list[tuple[str, bytes]] = []
    offset = 8
    while offset < total:
        kind, length = struct.unpack(">4sI", data[offset : offset + 8])
        assert 8 < length <= total - offset, f"bad length for {kind!r}"
        elements.append((kind.decode("ascii"), data[offset + 8 : offset + length]))
        offset += length
    assert offset == total
    return elements


# --- the validators ------------------------------------------------------------------------------


def test_desktop_file_validates_without_errors_warnings_or_hints(tmp_path: Path) -> None:
    tool = _tool("desktop-file-validate", "desktop-file-utils")
    result = subprocess.run(
        [tool, str(DESKTOP_FILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=_private_env(tmp_path),
    )
    report = (result.stdout + result.stderr).strip()
    assert report == "", report
    assert result.returncode == 0


def test_metainfo_validates_without_errors_or_warnings(tmp_path: Path) -> None:
    tool = _tool("appstreamcli", "appstream")
    result = subprocess.run(
        [tool, "validate", "--no-net", "--explain", str(METAINFO_FILE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=_private_env(tmp_path),
    )
    report = result.stdout + result.stderr
    problems = [line for line in report.splitlines() if line.startswith(("E:", "W:"))]
    assert problems == [], report
    assert result.returncode == 0, report


# --- one id everywhere ---------------------------------------------------------------------------


def test_one_app_id_names_the_desktop_file_icon_and_metainfo() -> None:
    entry = _desktop_entry()
    metainfo = _metainfo()
    assert APP_ID == "io.github.cgmtray.CgmTray"
    assert DESKTOP_FILE.stem == APP_ID
    assert entry["Icon"] == APP_ID
    assert metainfo.findtext("id") == APP_ID
    assert metainfo.get("type") == "desktop-application"
    launchable = metainfo.find("launchable")
    assert launchable is not None
    assert launchable.get("type") == "desktop-id"
    assert launchable.text == DESKTOP_FILE.name
    assert METAINFO_FILE.name == f"{APP_ID}.metainfo.xml"


def test_the_desktop_entry_launches_the_installed_command_without_a_terminal() -> None:
    entry = _desktop_entry()
    assert entry["Type"] == "Application"
    assert entry["Name"] == cgmtray.APP_NAME
    assert entry["Exec"].split()[0] in _console_scripts()
    assert entry["Terminal"] == "false"
    assert entry["StartupNotify"] == "false"
    assert entry["X-GNOME-UsesNotifications"] == "true"
    for key in ("GenericName", "Comment", "Keywords"):
        assert entry[key].strip(), f"{key} is empty"


def test_metainfo_names_the_binary_license_and_urls() -> None:
    metainfo = _metainfo()
    assert metainfo.findtext("metadata_license") == "CC0-1.0"
    assert metainfo.findtext("project_license") == _project_table()["license"]
    assert metainfo.findtext("provides/binary") in _console_scripts()
    urls = {url.get("type"): url.text for url in metainfo.iter("url")}
    assert urls["homepage"] == "https://github.com/cgmtray/cgm-tray"
    assert urls["bugtracker"] == "https://github.com/cgmtray/cgm-tray/issues"
    rating = metainfo.find("content_rating")
    assert rating is not None
    assert rating.get("type") == "oars-1.1"


def test_metainfo_description_says_it_is_not_a_medical_device() -> None:
    description = _metainfo().find("description")
    assert description is not None
    text = " ".join("".join(description.itertext()).split())
    assert "not a medical device" in text
    assert "do not make treatment decisions" in text
    assert "Dexcom" in text


def test_every_screenshot_is_a_committed_png_of_the_declared_size() -> None:
    shots = list(_metainfo().iter("screenshot"))
    assert shots, "the metainfo names no screenshot"
    assert sum(1 for shot in shots if shot.get("type") == "default") == 1
    for shot in shots:
        assert (shot.findtext("caption") or "").strip(), "a screenshot without a caption"
        image = shot.find("image")
        assert image is not None
        assert image.text is not None
        assert image.text.startswith(SCREENSHOT_URL_PREFIX), image.text
        path = SCREENSHOTS / image.text.removeprefix(SCREENSHOT_URL_PREFIX)
        assert path.is_file(), f"{path.name} is not in docs/screenshots/"
        header = png_header(path.read_bytes())
        assert (str(header.width), str(header.height)) == (image.get("width"), image.get("height"))


def test_the_newest_release_is_the_package_version() -> None:
    releases = _metainfo().findall("releases/release")
    assert releases
    newest = releases[0]
    assert newest.get("version") == _project_table()["version"] == cgmtray.__version__
    assert newest.get("date", "").count("-") == 2


# --- the icons -----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", HICOLOR_SIZES)
def test_hicolor_png_has_its_exact_size_and_is_drawn(size: int) -> None:
    path = HICOLOR / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
    data = path.read_bytes()
    header = png_header(data)
    assert (header.width, header.height) == (size, size)
    alpha = png_alpha_row(data, size // 2)  # through the middle of the drop
    assert (alpha[0], alpha[-1]) == (0, 0), "the background should be transparent"
    assert sum(1 for a in alpha if a == 255) >= size // 2, "the icon is (nearly) transparent"


def test_scalable_symbolic_and_runtime_svgs_are_copies_of_the_masters() -> None:
    master = MASTER_SVG.read_bytes()
    assert (HICOLOR / "scalable" / "apps" / f"{APP_ID}.svg").read_bytes() == master
    assert (ASSETS / "app-icon.svg").read_bytes() == master
    symbolic = (HICOLOR / "symbolic" / "apps" / f"{APP_ID}-symbolic.svg").read_bytes()
    assert symbolic == SYMBOLIC_SVG.read_bytes()


def test_the_runtime_fallback_png_is_256_pixels() -> None:
    header = png_header((ASSETS / "app-icon-256.png").read_bytes())
    assert (header.width, header.height, header.colour_type) == (256, 256, 6)


def test_the_master_svg_is_square_and_has_no_text() -> None:
    root = ET.fromstring(MASTER_SVG.read_bytes())  # noqa: S314 - our own file
    assert root.tag == f"{SVG_NS}svg"
    assert root.get("viewBox") == "0 0 128 128"
    assert not list(root.iter(f"{SVG_NS}text")), "text cannot be read at 16 px"


def test_the_symbolic_svg_follows_the_symbolic_conventions() -> None:
    root = ET.fromstring(SYMBOLIC_SVG.read_bytes())  # noqa: S314 - our own file
    assert (root.get("width"), root.get("height"), root.get("viewBox")) == ("16", "16", "0 0 16 16")
    fills = {el.get("fill") for el in root.iter() if el.get("fill") is not None}
    assert len(fills) == 1, f"one colour only, not {fills}"
    assert not [el for el in root.iter() if el.get("stroke") not in (None, "none")]
    gradients = [*root.iter(f"{SVG_NS}linearGradient"), *root.iter(f"{SVG_NS}radialGradient")]
    assert not gradients


def test_the_windows_icon_holds_a_png_per_size() -> None:
    entries = read_ico((ICONS / f"{APP_ID}.ico").read_bytes())
    assert [entry.width for entry in entries] == list(ICO_SIZES)
    for entry in entries:
        assert (entry.height, entry.bits_per_pixel) == (entry.width, 32)
        header = png_header(entry.data)
        assert (header.width, header.height) == (entry.width, entry.height)


def test_the_macos_icon_holds_a_png_per_type() -> None:
    elements = read_icns((ICONS / f"{APP_ID}.icns").read_bytes())
    assert [kind for kind, _ in elements] == list(ICNS_SIZES)
    for kind, payload in elements:
        header = png_header(payload)
        assert (header.width, header.height) == (ICNS_SIZES[kind], ICNS_SIZES[kind])


def test_the_readers_reject_what_is_not_their_format() -> None:
    with pytest.raises(AssertionError):
        png_header(b"GIF89a" + bytes(40))
    with pytest.raises(AssertionError):
        read_ico(struct.pack("<HHH", 0, 2, 0))
    with pytest.raises(AssertionError):
        read_icns(b"icns" + struct.pack(">I", 99))
