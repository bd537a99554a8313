"""Share regions (us / ous / jp): base URLs, application ids and endpoint paths."""

from __future__ import annotations

import enum
from typing import Final

ENDPOINT_AUTHENTICATE: Final = "General/AuthenticatePublisherAccount"
ENDPOINT_LOGIN_BY_ID: Final = "General/LoginPublisherAccountById"
ENDPOINT_READ: Final = "Publisher/ReadPublisherLatestGlucoseValues"
ENDPOINT_SYSTEM_UTC_TIME: Final = "General/SystemUtcTime"
#: The pre-2021 sign-in by name: still answers, with the all-zero UUID (protocol 2.6, 3). The tray
#: app never calls it; the fake service answers it as the real one does.
ENDPOINT_LOGIN_BY_NAME: Final = "General/LoginPublisherAccountByName"
# Uploader (publisher-side) endpoints: the fake service implements them so readings can be
# published into it; the tray app never calls them.
ENDPOINT_POST_EGVS: Final = "Publisher/PostReceiverEgvRecords"
ENDPOINT_START_MONITORING: Final = "Publisher/StartRemoteMonitoringSession"
ENDPOINT_STOP_MONITORING: Final = "Publisher/StopRemoteMonitoringSession"
ENDPOINT_IS_MONITORING: Final = "Publisher/IsRemoteMonitoringSessionActive"
# The publisher's follower list (protocol 2.5). The tray app only ever calls the list; the fake
# service implements all five so tests can set up "Share on, nobody follows" and the rest.
ENDPOINT_CONTACT_EXISTS: Final = "Publisher/DoesContactExistByName"
ENDPOINT_CREATE_CONTACT: Final = "Publisher/CreateContact"
ENDPOINT_CREATE_INVITATION: Final = "Publisher/CreateSubscriptionInvitation"
ENDPOINT_LIST_SUBSCRIPTIONS: Final = "Publisher/ListPublisherAccountSubscriptions"
ENDPOINT_DELETE_CONTACT: Final = "Publisher/DeleteContact"

#: The path every Share base URL ends in.
SERVICES_PATH: Final = "/ShareWebServices/Services/"

APP_ID_US_OUS: Final = "d89443d2-327c-4a6f-89e5-496bbb0317db"
APP_ID_JP: Final = "d8665ade-9673-4e27-9ff6-92db4ce13d13"


class Region(enum.StrEnum):
    """A Share deployment. The value is the short name used in settings and on the command line."""

    US = "us"
    OUS = "ous"
    JP = "jp"

    @property
    def base_url(self) -> str:
        return _BASE_URLS[self]

    @property
    def application_id(self) -> str:
        return APP_ID_JP if self is Region.JP else APP_ID_US_OUS

    @property
    def accepted_application_ids(self) -> frozenset[str]:
        """The ids the real service is known to accept here (protocol section 1)."""
        if self is Region.JP:
            return frozenset({APP_ID_JP})
        return frozenset({APP_ID_US_OUS, APP_ID_JP})

    @property
    def display_name(self) -> str:
        """The plain name shown to people."""
        return _DISPLAY_NAMES[self]


_BASE_URLS: dict[Region, str] = {
    Region.US: "https://share2.dexcom.com/ShareWebServices/Services/",
    Region.OUS: "https://shareous1.dexcom.com/ShareWebServices/Services/",
    Region.JP: "https://share.dexcom.jp/ShareWebServices/Services/",
}

_DISPLAY_NAMES: dict[Region, str] = {
    Region.US: "United States",
    Region.OUS: "Outside the US",
    Region.JP: "Japan",
}
