"""The one rule for a Share URL override (settings file, --share-url, tests): this computer only."""

from __future__ import annotations

import ipaddress
from typing import Final
from urllib.parse import urlsplit

from cgmtray.share.regions import SERVICES_PATH

#: An override that passes the rule, for messages.
EXAMPLE_SHARE_URL: Final = "http://127.0.0.1:8080" + SERVICES_PATH

_LOOPBACK_NAMES: Final = frozenset({"localhost"})
_SCHEMES: Final = frozenset({"http", "https"})


def share_url_problem(url: object) -> str | None:
    """None when `url` may replace the region's Share URL, else a plain sentence saying why not.

    The rule (the settings loader and the client both use it, so one never accepts what the
    other refuses): `http` or `https`, a loopback host (127.0.0.0/8, ::1 or localhost: passwords
    go only to Dexcom or to this computer), an explicit port, no user name or password, and the
    path exactly SERVICES_PATH with nothing after it (no query, no fragment, no whitespace).
    """
    if not isinstance(url, str) or not url:
        return "A custom Share address must not be empty."
    if any(char <= " " or char == "\x7f" or char in "?#" for char in url):
        return (
            "A custom Share address must not contain spaces, control characters, "
            "a query (?) or a fragment (#)."
        )
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError:
        return "A custom Share address must name a port from 1 to 65535, such as :8080."
    if parts.scheme not in _SCHEMES or not url.lower().startswith(parts.scheme + "://"):
        return "A custom Share address must start with http:// or https://."
    if parts.username is not None or parts.password is not None:
        return "A custom Share address must not contain a user name or password."
    if not host or not _is_loopback(host):
        return "A custom Share address must point to this computer (loopback)."
    if port is None or not 1 <= port <= 65535:
        return "A custom Share address must name a port from 1 to 65535, such as :8080."
    if parts.path != SERVICES_PATH:
        return f"A custom Share address must end in {SERVICES_PATH}."
    return None


def is_share_url(url: object) -> bool:
    """True when `url` passes the rule of `share_url_problem`."""
    return share_url_problem(url) is None


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
