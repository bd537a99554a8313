"""Who follows the publisher: the answer of ListPublisherAccountSubscriptions, summed up."""

from __future__ import annotations

from dataclasses import dataclass

from cgmtray.share import wire


@dataclass(frozen=True, slots=True)
class FollowerSummary:
    """How many followers accepted their invitation and how many invitations are pending.

    Protocol 2.5: a follower's `SubscriberId` is the all-zero UUID until the invitation is
    accepted; `State` is only known for a pending one (2), so it is not used. A disabled
    follower (`IsEnabled` false) receives nothing and counts as neither. No names are kept.
    """

    accepted: int = 0
    pending: int = 0

    @property
    def anyone_follows(self) -> bool:
        """Whether readings can flow: at least one follower accepted."""
        return self.accepted > 0

    @property
    def total(self) -> int:
        return self.accepted + self.pending


def parse_followers(answer: object) -> FollowerSummary:
    """The summary of a ListPublisherAccountSubscriptions answer (a JSON array of objects);
    WireFormatError for anything else."""
    if not isinstance(answer, list):
        raise wire.WireFormatError(f"follower list is a {type(answer).__name__}, not an array")
    accepted = pending = 0
    for item in answer:
        if not isinstance(item, dict):
            raise wire.WireFormatError("a follower is not a JSON object")
        if item.get("IsEnabled") is False:
            continue
        if _has_subscriber(item.get("SubscriberId")):
            accepted += 1
        else:
            pending += 1
    return FollowerSummary(accepted, pending)


def _has_subscriber(value: object) -> bool:
    try:
        wire.parse_id(value)
    except wire.WireFormatError:
        return False
    return True
