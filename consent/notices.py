"""The builder of consent's notices (consent_receipt, changed_on_behalf; policy_change is
consent.policy.policy_notice_context), with templates under templates/emails/<kind>/.

The consent services call these inside their transaction, so the outbox row is
committed with the change or not at all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.urls import reverse
from django.utils.translation import gettext

from accounts.locale import user_locale
from accounts.models import User
from notifications.models import Notification
from notifications.services import NewNotification, queue_notice, queue_notifications

# How many track titles a digest names per purpose before it says "and N more".
DIGEST_TITLES = 10


@dataclass(frozen=True)
class ChangedCell:
    artist_id: int
    track_title: str
    purpose_slug: str
    purpose_name: str
    granted: bool
    track_id: int | None = None


def _actor_label(actor: User | None, artist_id: int, label_name: str = "") -> str:
    """Who made the change, in the recipient's language (called under their locale)."""
    if actor is None:
        return gettext("the portal (automatic change)")
    if actor.pk == artist_id:
        return gettext("you")
    if actor.is_staff:
        return gettext("Portal staff")
    manager = actor.display_name or gettext("a label manager")
    if label_name:
        return gettext("%(manager)s of %(label)s") % {"manager": manager, "label": label_name}
    return manager


def _digest(cells: list[ChangedCell], *, limit: int | None = DIGEST_TITLES) -> list[dict]:
    per_purpose: dict[str, dict] = {}
    for cell in cells:
        entry = per_purpose.setdefault(
            cell.purpose_slug,
            {"slug": cell.purpose_slug, "name": cell.purpose_name, "granted": [], "withdrawn": []},
        )
        entry["granted" if cell.granted else "withdrawn"].append(cell.track_title or gettext("Untitled track"))
    digest = []
    for entry in per_purpose.values():
        summary = {"slug": entry["slug"], "name": entry["name"]}
        for state in ("granted", "withdrawn"):
            titles = entry[state]
            summary[f"{state}_count"] = len(titles)
            shown = titles if limit is None else titles[:limit]
            summary[f"{state}_titles"] = shown
            summary[f"{state}_more"] = len(titles) - len(shown)
        digest.append(summary)
    return digest


def queue_consent_change_notices(
    *,
    actor: User | None,
    receipt_id: Any,
    source: str,
    cells: Iterable[ChangedCell],
    chain_heads: dict[int, dict],
    label_name: str = "",
    what: str = "tracks",
    at_once: bool = False,
) -> int:
    """One email per artist per save, whatever the number of tracks; returns how many were queued.

    To the artist's own save: a receipt. To a change someone else made: a
    notice of a change made on their behalf, which cannot be turned off.
    `what` words the digest: "tracks" (consent on tracks), "defaults" (what
    future uploads get), "reconfirmed" (grants confirmed under new terms) or
    "upload" (what one upload's files were given from the start: every file is
    named, an upload holds few). `at_once` writes every row in one statement
    (bulk changes, many artists).
    """
    notices = consent_change_notices(
        actor=actor,
        receipt_id=receipt_id,
        source=source,
        cells=cells,
        chain_heads=chain_heads,
        label_name=label_name,
        what=what,
    )
    if at_once:
        return len(queue_notifications(notices))
    return sum(queue_notice(notice) is not None for notice in notices)


def consent_change_notices(
    *,
    actor: User | None,
    receipt_id,
    source: str,
    cells: Iterable[ChangedCell],
    chain_heads: dict[int, dict],
    label_name: str,
    what: str,
    artists: Mapping[int, User] | None = None,
) -> list[NewNotification]:
    """The notices of one save, one per artist, not yet queued; `artists` (id -> User) if already read.

    Given `artists` it reads nothing from the database, so a writer may word its notices on a second thread
    (each is worded in its artist's language: translation.override is per thread).
    """
    by_artist: dict[int, list[ChangedCell]] = defaultdict(list)
    for cell in cells:
        by_artist[cell.artist_id].append(cell)
    if not by_artist:
        return []
    if artists is None:
        artists = User.objects.in_bulk(list(by_artist))
    audit_url = reverse("consent:audit_log")
    notices = []
    for artist_id, artist_cells in by_artist.items():
        artist = artists[artist_id]
        own_change = actor is not None and actor.pk == artist_id
        kind = Notification.Kind.CONSENT_RECEIPT if own_change else Notification.Kind.CHANGED_ON_BEHALF
        with user_locale(artist):
            actor_label = _actor_label(actor, artist_id, label_name)
            purposes = _digest(artist_cells, limit=None if what == "upload" else DIGEST_TITLES)
        context = {
            "artist_name": artist.display_name or artist.email,
            "actor_label": actor_label,
            "label_name": label_name,
            "delegations_path": reverse("labels:delegations") if label_name else "",
            "source": source,
            "what": what,
            "receipt_id": str(receipt_id),
            "change_count": len(artist_cells),
            "track_count": len({cell.track_id for cell in artist_cells}),
            "purposes": purposes,
            "chain_head": chain_heads.get(artist_id, {}).get("hash", ""),
            "audit_log_path": f"{audit_url}?receipt={receipt_id}",
        }
        notices.append(
            NewNotification(
                kind=kind,
                to_email=artist.email,
                dedupe_key=f"consent:{receipt_id}:{artist_id}",
                context=context,
                recipient=artist,
            )
        )
    return notices
