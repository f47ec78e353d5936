"""What an upload grants: the artist's upload defaults and the upload form's choices."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext

from consent.models import (
    AuditEvent,
    Purpose,
    UploadDefault,
)
from consent.notices import ChangedCell, queue_consent_change_notices
from consent.services.audit import (
    append_events,
    event_row,
    head_summary,
    lock_chain_heads,
    policy_in_force,
    purposes_by_slug,
    require_confirmation,
    state_value,
    valid_source,
)
from consent.services.errors import (
    ChangeResult,
    ConsentError,
    ConsentPermissionDenied,
)
from consent.services.permissions import can_change_consent
from consent.services.writes import write_track_consent
from platformkit.request_meta import RequestMeta
from platformkit.sql import insert_rows
from tracks.models import Track

if TYPE_CHECKING:
    from accounts.models import User

Source = AuditEvent.Source
Kind = AuditEvent.Kind


@dataclass(frozen=True)
class DefaultChange:
    """One upload default that a save changes; `default_id` is its existing row, if any."""

    purpose: Purpose
    granted: bool
    default_id: int | None


def apply_upload_consent(
    *,
    actor: User,
    tracks: QuerySet[Track],
    choices: Mapping[str, bool] | None = None,
    request_meta: RequestMeta | None = None,
    confirmed_purposes: Collection[str] = (),
) -> ChangeResult:
    """Give the new tracks of one upload what their artist chose: account defaults and the upload form.

    One upload is one save, whatever the number of files: one receipt lists
    every file. Each grant is audited with where it came from (the defaults or
    the form). Opt-in only: `False` in `choices` and defaults that are off grant
    nothing, and a new track starts with nothing granted. A default that needs
    confirmation was confirmed when the artist set it, so it applies as is.
    """
    owner_ids = set(Track.objects.filter(pk__in=tracks.values("pk")).values_list("owner_id", flat=True).distinct())
    if len(owner_ids) != 1:
        if owner_ids:
            raise ConsentError(gettext("An upload's consent applies to the tracks of one artist at a time."))
        return ChangeResult()
    defaults = set(
        UploadDefault.objects.filter(artist_id=owner_ids.pop(), granted=True).values_list("purpose__slug", flat=True)
    )
    chosen = {slug for slug, granted in (choices or {}).items() if granted}
    changes = dict.fromkeys(sorted(defaults | chosen), True)
    if not changes:
        return ChangeResult()
    return write_track_consent(
        actor=actor,
        tracks=tracks,
        wanted=lambda _uuid: changes,
        slugs=changes.keys(),
        source=Source.UPLOAD if chosen else Source.ACCOUNT_DEFAULT,
        sources={slug: Source.ACCOUNT_DEFAULT if slug in defaults else Source.UPLOAD for slug in changes},
        request_meta=request_meta,
        confirmed_purposes={*defaults, *confirmed_purposes},
        what="upload",
    )


def set_upload_defaults(
    *,
    actor: User | None,
    artist: User,
    choices: Mapping[str, bool],
    request_meta: RequestMeta | None = None,
    confirmed_purposes: Collection[str] = (),
    source: str = Source.ACCOUNT_DEFAULT,
) -> ChangeResult:
    """Change what future uploads of `artist` are granted. Audited as defaults_changed."""
    source = valid_source(source)
    purposes = purposes_by_slug(choices)
    refused = [s for s, g in choices.items() if not can_change_consent(actor, owner_id=artist.pk, granted=bool(g))]
    if refused:
        raise ConsentPermissionDenied(gettext("You may not change these upload defaults."))
    with transaction.atomic():
        heads = lock_chain_heads([artist.pk])
        existing = {
            purpose_id: (pk, granted)
            for pk, purpose_id, granted in UploadDefault.objects.select_for_update()
            .filter(artist=artist, purpose__in=purposes.values())
            .values_list("pk", "purpose_id", "granted")
        }
        changed = []
        for slug, granted in choices.items():
            purpose = purposes[slug]
            pk, old = existing.get(purpose.pk, (None, False))
            if old != bool(granted):
                changed.append(DefaultChange(purpose, bool(granted), pk))
        if not changed:
            return ChangeResult()
        require_confirmation({c.purpose for c in changed if c.granted}, confirmed_purposes)

        policy = policy_in_force()
        now = timezone.now()
        receipt_id = uuid.uuid4()
        changed.sort(key=lambda c: (c.purpose.ordering, c.purpose.pk))
        insert_rows(
            UploadDefault,
            [
                {"artist_id": artist.pk, "purpose_id": c.purpose.pk, "granted": c.granted, "changed_at": now}
                for c in changed
                if c.default_id is None
            ],
        )
        for granted in (True, False):
            ids = [c.default_id for c in changed if c.default_id is not None and c.granted == granted]
            if ids:
                UploadDefault.objects.filter(pk__in=ids).update(granted=granted, changed_at=now)
        append_events(
            heads,
            [
                event_row(
                    artist_id=artist.pk,
                    actor=actor,
                    kind=Kind.DEFAULTS_CHANGED,
                    source=source,
                    now=now,
                    request_meta=request_meta,
                    policy=policy,
                    receipt_id=receipt_id,
                    purpose=c.purpose,
                    old_value=state_value(not c.granted),
                    new_value=state_value(c.granted),
                )
                for c in changed
            ],
        )
        counts: dict[str, dict[str, int]] = {}
        for c in changed:
            counts[c.purpose.slug] = {"granted": int(c.granted), "withdrawn": int(not c.granted)}
        chain_heads = head_summary(heads, [artist.pk])
        queue_consent_change_notices(
            actor=actor,
            receipt_id=receipt_id,
            source=source,
            cells=[ChangedCell(artist.pk, "", c.purpose.slug, c.purpose.name, c.granted) for c in changed],
            chain_heads=chain_heads,
            what="defaults",
        )
        return ChangeResult(receipt_id=receipt_id, counts=counts, event_count=len(changed), chain_heads=chain_heads)
