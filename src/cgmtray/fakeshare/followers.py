"""The publisher's follower list in the fake service: contacts and invitations (protocol 2.5)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from cgmtray.fakeshare.bodies import ZERO_UUID, epoch_ms

#: `State` of an invitation not yet accepted (the 2015-16 capture shows 2).
PENDING_STATE: Final = 2
#: `State` once the follower accepted. [synthetic] no capture shows it; clients must not rely on
#: it (an accepted follower is told by a non-zero `SubscriberId`, which the capture documents).
ACCEPTED_STATE: Final = 1
#: How long an invitation may be accepted. [synthetic] the capture only names `InviteExpires`.
INVITE_LIFETIME: Final = timedelta(days=30)
#: `Permissions` 1: the follower may see the graph (the capture's value).
DEFAULT_PERMISSIONS: Final = 1
#: The follower every new account starts with, so reads flow as they always did in the fake.
#: [synthetic] an account made by a test is "Share on, someone follows" unless it says otherwise.
DEFAULT_FOLLOWER_NAME: Final = "Follower"


class FollowerError(Exception):
    """A follower request the list refuses; `code` is the Share error Code to answer with."""

    code = "FollowerError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ContactNotFoundError(FollowerError):
    # [synthetic] Code and message follow SessionIdNotFound's recorded form.
    code = "ContactNotFound"


class DuplicateContactError(FollowerError):
    # [synthetic] the doc is silent on a second contact of the same name.
    code = "DuplicateContact"


class DuplicateInvitationError(FollowerError):
    # [synthetic] the doc is silent on a second invitation to one contact.
    code = "DuplicateSubscription"


@dataclass
class Follower:
    """One contact of the publisher and, once invited, its subscription."""

    contact_id: str
    name: str
    email: str = field(repr=False)
    created_at: datetime
    subscription_id: str | None = None
    modified_at: datetime | None = None
    invite_expires: datetime | None = None
    #: None until the invitation is accepted (the wire shows the all-zero UUID then).
    subscriber_id: str | None = None
    permissions: int = DEFAULT_PERMISSIONS
    display_name: str = ""
    alert_settings: dict[str, object] = field(default_factory=dict, repr=False)
    enabled: bool = True

    @property
    def invited(self) -> bool:
        return self.subscription_id is not None

    @property
    def accepted(self) -> bool:
        return self.subscriber_id is not None

    @property
    def state_name(self) -> str:
        """For the control channel: "accepted", "pending" (invited) or "contact" (not invited)."""
        if self.accepted:
            return "accepted"
        return "pending" if self.invited else "contact"

    def wire_object(self) -> dict[str, object]:
        """The follower as ListPublisherAccountSubscriptions shows it (only invited contacts)."""
        assert self.subscription_id is not None
        created = self.created_at
        modified = self.modified_at or created
        expires = self.invite_expires or created
        return {
            "ContactId": self.contact_id,
            "ContactName": self.name,
            "DisplayName": self.display_name,
            "DateTimeCreated": _date(created),
            "DateTimeModified": _date(modified),
            "InviteExpires": _date(expires),
            "IsEnabled": self.enabled,
            "IsMonitoringSessionActive": self.accepted,
            "Permissions": self.permissions,
            "State": ACCEPTED_STATE if self.accepted else PENDING_STATE,
            "SubscriberId": self.subscriber_id or ZERO_UUID,
            "SubscriptionId": self.subscription_id,
        }


def _date(when: datetime) -> dict[str, object]:
    return {"DateTime": f"/Date({epoch_ms(when)})/", "OffsetMinutes": 0}


class FollowerList:
    """One account's contacts in the order they were made. Not thread-safe: the service's lock
    guards it."""

    def __init__(self) -> None:
        self._followers: dict[str, Follower] = {}

    def __len__(self) -> int:
        return len(self._followers)

    def all(self) -> list[Follower]:
        return list(self._followers.values())

    def exists(self, name: str) -> bool:
        wanted = _name_key(name)
        return any(_name_key(f.name) == wanted for f in self._followers.values())

    def by_name(self, name: str) -> Follower:
        wanted = _name_key(name)
        for follower in self._followers.values():
            if _name_key(follower.name) == wanted:
                return follower
        raise ContactNotFoundError(f"Failed to find contact object. [ContactName = {name}]")

    def get(self, contact_id: str) -> Follower:
        found = self._followers.get(contact_id.lower())
        if found is None:
            raise ContactNotFoundError(f"Failed to find contact object. [ContactId = {contact_id}]")
        return found

    def create(self, name: str, email: str, now: datetime) -> Follower:
        """A new contact (names are unique without regard to case)."""
        if self.exists(name):
            raise DuplicateContactError(
                f"A contact with this name already exists. [ContactName = {name}]"
            )
        follower = Follower(str(uuid.uuid4()), name, email, now)
        self._followers[follower.contact_id] = follower
        return follower

    def invite(
        self,
        contact_id: str,
        now: datetime,
        *,
        permissions: int = DEFAULT_PERMISSIONS,
        display_name: str = "",
        alert_settings: dict[str, object] | None = None,
    ) -> Follower:
        """The contact's invitation; one per contact."""
        follower = self.get(contact_id)
        if follower.invited:
            raise DuplicateInvitationError(
                "The contact already has a subscription invitation. "
                f"[ContactId = {follower.contact_id}]"
            )
        follower.subscription_id = str(uuid.uuid4())
        follower.modified_at = now
        follower.invite_expires = now + INVITE_LIFETIME
        follower.permissions = permissions
        follower.display_name = display_name
        follower.alert_settings = dict(alert_settings or {})
        return follower

    def accept(self, contact_id: str, now: datetime) -> Follower:
        """The follower accepted the invitation (in the Dexcom Follow app)."""
        follower = self.get(contact_id)
        if not follower.invited:
            raise ContactNotFoundError(
                f"The contact has no subscription invitation. [ContactId = {contact_id}]"
            )
        if follower.subscriber_id is None:
            follower.subscriber_id = str(uuid.uuid4())
            follower.modified_at = now
        return follower

    def delete(self, contact_id: str) -> None:
        follower = self.get(contact_id)
        del self._followers[follower.contact_id]

    def clear(self) -> int:
        count = len(self._followers)
        self._followers.clear()
        return count

    def subscriptions(self) -> list[dict[str, object]]:
        """What ListPublisherAccountSubscriptions answers: one object per invited contact."""
        return [f.wire_object() for f in self._followers.values() if f.invited]

    def following(self) -> bool:
        """Whether readings flow: someone accepted an invitation and is enabled."""
        return any(f.accepted and f.enabled for f in self._followers.values())


def _name_key(name: str) -> str:
    return name.strip().casefold()
