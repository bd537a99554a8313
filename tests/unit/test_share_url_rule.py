"""One share_url rule: what the settings loader accepts, the client accepts, and the reverse."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import given
from hypothesis import strategies as st

from cgmtray.cli import build_parser
from cgmtray.share.client import ClientConfig, ShareClient
from cgmtray.share.errors import InvalidRequestError
from cgmtray.share.regions import SERVICES_PATH, Region
from cgmtray.share.urls import EXAMPLE_SHARE_URL, share_url_problem
from cgmtray.storage.settings import (
    SETTINGS_VERSION,
    load_settings,
    one_person_settings,
    settings_from_document,
    validate,
)

USERNAME = "alice@example.com"
PASSWORD = "s3cret-Passw0rd!"

SCHEMES = st.sampled_from(["http", "https", "HTTP", "Https", "ftp", "file", "", "http:/", "ws"])
HOSTS = st.sampled_from(
    [
        "127.0.0.1",
        "127.5.6.7",
        "localhost",
        "LocalHost",
        "[::1]",
        "::1",
        "[::ffff:127.0.0.1]",
        "0.0.0.0",  # noqa: S104 (a URL host here, nothing is bound)
        "10.0.0.7",
        "share2.dexcom.com",
        "127.0.0.1.evil.example",
        "localhost.evil.example",
        "user:pw@127.0.0.1",
        "@127.0.0.1",
        "127.1",
        "",
        "[::1",
    ]
)
PORTS = st.sampled_from(["", ":8080", ":80", ":0", ":65535", ":65536", ":99999", ":x", ":", ":-1"])
PATHS = st.sampled_from(
    [
        SERVICES_PATH,
        SERVICES_PATH.rstrip("/"),
        SERVICES_PATH + "/",
        SERVICES_PATH.lower(),
        "/",
        "",
        "/Other" + SERVICES_PATH,
        SERVICES_PATH + "General/",
        "/ShareWebServices//Services/",
    ]
)
TAILS = st.sampled_from(["", "?", "?x=1", "#", "#top", " ", "\t", "\n", "%20", "\x00"])
URL_LIKE = st.builds(
    lambda scheme, host, port, path, tail: f"{scheme}://{host}{port}{path}{tail}",
    SCHEMES,
    HOSTS,
    PORTS,
    PATHS,
    TAILS,
)
CANDIDATES = URL_LIKE | st.text(st.characters(codec="utf-8"), max_size=60)


def loader_accepts(url: str) -> tuple[bool, list[str]]:
    """What the settings loader made of `url` as a person's share_url: kept, and its messages."""
    document: dict[str, Any] = {
        "version": SETTINGS_VERSION,
        "people": [{"share": {"share_url": url}}],
    }
    settings, problems = settings_from_document(document)
    return settings.first_person.source.share_url == url, problems


def client_accepts(url: str) -> bool:
    refusal: InvalidRequestError | None = None
    try:
        client = ShareClient(ClientConfig(Region.US, USERNAME, base_url=url), PASSWORD)
    except InvalidRequestError as refused:
        refusal = refused
    else:
        client.close()
    if refusal is not None:
        assert "this computer" in refusal.user_message
    return refusal is None


@given(CANDIDATES)
def test_the_loader_and_the_client_agree_on_every_share_url(url: str) -> None:
    kept, problems = loader_accepts(url)
    accepted = client_accepts(url)
    if kept:
        assert accepted, url  # a loaded share_url is always one the client polls
        assert problems == []
        assert validate(one_person_settings(share_url=url), require_username=False) == []
    if not accepted:
        assert not kept
        assert len(problems) == 1
        assert "people[1].share.share_url" in problems[0]
        assert EXAMPLE_SHARE_URL in problems[0]
        assert validate(one_person_settings(share_url=url), require_username=False) == [
            share_url_problem(url)
        ]
    assert kept == accepted
    assert cli_accepts(url) == accepted  # --share-url: the third way in, the same rule


def cli_accepts(url: str) -> bool:
    try:
        build_parser().parse_args(["now", "--share-url", url])
    except SystemExit:
        return False
    return True


def test_a_refused_share_url_option_stops_the_command_with_the_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["--share-url", "https://share2.example.com:443" + SERVICES_PATH])
    assert stopped.value.code == 2
    assert "must point to this computer" in capsys.readouterr().err


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/ShareWebServices/Services/",
        "https://localhost:8443/ShareWebServices/Services/",
        "http://[::1]:9000/ShareWebServices/Services/",
    ],
)
def test_a_loopback_share_url_is_accepted_by_both(url: str) -> None:
    assert loader_accepts(url) == (True, [])
    assert client_accepts(url)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8080/", "must end in " + SERVICES_PATH),
        ("http://127.0.0.1/ShareWebServices/Services/", "must name a port"),
        ("http://127.0.0.1:8080/ShareWebServices/Services/?", "query"),
        ("https://share2.dexcom.com:443/ShareWebServices/Services/", "this computer"),
        ("ftp://127.0.0.1:8080/ShareWebServices/Services/", "http:// or https://"),
        ("http://me:pw@127.0.0.1:8080/ShareWebServices/Services/", "user name or password"),
    ],
)
def test_a_refused_share_url_is_refused_by_both_with_the_same_reason(url: str, reason: str) -> None:
    problem = share_url_problem(url)
    assert problem is not None
    assert reason in problem
    assert loader_accepts(url)[0] is False
    with pytest.raises(InvalidRequestError) as refused:
        ShareClient(ClientConfig(Region.US, USERNAME, base_url=url), PASSWORD)
    assert refused.value.user_message.startswith(problem)


def test_a_refused_share_url_in_an_existing_settings_file_is_named_at_start(
    tmp_path: Path,
) -> None:
    # A value the old loader accepted and the client refused: the app started, never polled.
    path = tmp_path / "settings.toml"
    document = {
        "version": 1,  # the layout before people
        "account": {"region": "us", "username": USERNAME},
        "advanced": {"share_url": "http://127.0.0.1:8080/"},
    }
    path.write_text(tomli_w.dumps(document), encoding="utf-8")
    loaded = load_settings(path)
    assert (
        loaded.settings.first_person.source.share_url is None
    )  # the account is polled on Dexcom's own service
    assert loaded.settings.first_person.source.username == USERNAME
    assert loaded.problem is not None
    assert "people[1].share.share_url" in loaded.problem  # [advanced] was the first person's
    assert EXAMPLE_SHARE_URL in loaded.problem
    assert "Dexcom's own service is used instead" in loaded.problem
