#!/usr/bin/env bash
# Installs the Debian packages the test tiers need (see docs/testing.md), only when root and missing.
set -euo pipefail

packages=(
  # Qt offscreen
  libegl1 libgl1 libx11-6 libdbus-1-3 libfontconfig1 libfreetype6 libglib2.0-0 libxkbcommon0
  fonts-dejavu-core
  # Qt on Xvfb, a private D-Bus, an XEmbed tray host
  xvfb xauth libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-render-util0
  libxcb-render0 libxcb-shape0 libxcb-util1 libxcb-xkb1 libxkbcommon-x11-0 dbus trayer
  # a real notification daemon and Secret Service, screenshots and clicks
  dunst libnotify-bin gnome-keyring libsecret-tools imagemagick xdotool
  # QtMultimedia (the alarm sound) loads libpulse even when no sound server runs
  libpulse0 libpulse-mainloop-glib0
  # validators of the .desktop entry and the AppStream metainfo (tests/unit/test_desktop_metadata.py)
  desktop-file-utils appstream
)

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install-sysdeps: not a Debian system; install the equivalents of: ${packages[*]}" >&2
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-sysdeps: missing Debian packages (run as root or install them): ${missing[*]}" >&2
  exit 0
fi

echo "install-sysdeps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
