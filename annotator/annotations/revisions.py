"""How revisions are stored: a full snapshot now and then, and what each save changed in between.

A revision is either a snapshot (``Revision.annotations``: the whole set, objects in the API form
of selectors.annotation_to_dict, in the order they were saved) or a delta against the revision
just before it (``Revision.delta``)::

    {"added": [object, ...], "changed": [object, ...], "removed": [uid, ...], "order": [uid, ...]}

``order`` lists the uids of the whole set as saved, so that applying a delta gives back the list
exactly, order included. An autosave that moves one vertex then writes one object and a list of
uids instead of the whole set. Version 1, every ``SNAPSHOT_EVERY`` versions, and every restore,
import or review revision are snapshots, so that reading any revision applies at most
``SNAPSHOT_EVERY - 1`` small deltas to one snapshot. Rows written before deltas existed are all
snapshots and read as they always did.
"""
from __future__ import annotations

from typing import Any, TypedDict

from annotator.core.errors import DomainError

from .models import RevisionAction

SNAPSHOT_EVERY = 20


class Delta(TypedDict):
    """What one save changed against the revision before it."""

    added: list[dict[str, Any]]
    changed: list[dict[str, Any]]
    removed: list[str]
    order: list[str]


class RevisionBroken(DomainError):
    """A delta whose earlier revisions are missing or do not fit it (the data was damaged)."""


def snapshot_due(*, version: int, action: str) -> bool:
    """Whether the revision ``version`` is stored whole (else as a delta against ``version - 1``)."""
    return version <= 1 or action != RevisionAction.SAVE or version % SNAPSHOT_EVERY == 1


def delta_apply(objects: list[dict[str, Any]], delta: Delta) -> list[dict[str, Any]]:
    """The set after a save, from the set before it and the save's delta."""
    by_uid = {obj["uid"]: obj for obj in objects}
    for uid in delta["removed"]:
        if by_uid.pop(uid, None) is None:
            raise RevisionBroken(f"a revision removes object {uid}, which the revision before it does not have")
    for obj in delta["added"] + delta["changed"]:
        by_uid[obj["uid"]] = obj
    try:
        return [by_uid[uid] for uid in delta["order"]]
    except KeyError as exc:
        raise RevisionBroken(f"a revision lists object {exc.args[0]}, which neither it nor the one before has") from None


def delta_between(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> Delta:
    """The delta that turns the set ``before`` into ``after`` (objects compared whole, by uid)."""
    old = {obj["uid"]: obj for obj in before}
    new_uids = {obj["uid"] for obj in after}
    return {
        "added": [obj for obj in after if obj["uid"] not in old],
        "changed": [obj for obj in after if obj["uid"] in old and old[obj["uid"]] != obj],
        "removed": [uid for uid in old if uid not in new_uids],
        "order": [obj["uid"] for obj in after],
    }


class Chain:
    """An image's revisions walked one at a time in version order, holding only the latest set.

    Backups read revisions this way (each written whole to the archive) and restores write them
    this way (each full set from the archive stored as a snapshot or a delta, as a save would).
    """

    def __init__(self) -> None:
        self._at: tuple[Any, int] | None = None  # (image id, version) of the set held
        self._objects: list[dict[str, Any]] = []

    def read(self, *, image_id: Any, version: int, annotations: Any, delta: Any) -> list[dict[str, Any]] | None:
        """The whole set of a stored revision; None for a delta that does not follow the one read before."""
        if annotations is not None:
            objects = annotations
        elif self._at == (image_id, version - 1):
            objects = delta_apply(self._objects, delta)
        else:
            self._at = None
            return None
        self._at, self._objects = (image_id, version), objects
        return objects

    def write(self, *, image_id: Any, version: int, action: str, objects: list[dict[str, Any]]) -> tuple[Any, Delta | None]:
        """(annotations, delta) to store for revision ``version`` of ``image_id`` holding ``objects``."""
        follows = self._at == (image_id, version - 1)
        before = self._objects
        self._at, self._objects = (image_id, version), objects
        if follows and not snapshot_due(version=version, action=action):
            return None, delta_between(before, objects)
        return objects, None
