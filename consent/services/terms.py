"""Policy versions: acknowledging one, reconfirming grants whose meaning it changes, lapsing the rest."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext

from consent.models import (
    AuditEvent,
    Consent,
    PolicyVersion,
)
from consent.notices import ChangedCell, queue_consent_change_notices
from consent.services.audit import (
    append_events,
    event_row,
    head_summary,
    lock_chain_heads,
)
from consent.services.errors import (
    GRANTED,
    ChangeResult,
    ConsentError,
)
from consent.services.writes import change_consent
from platformkit.request_meta import RequestMeta
from platformkit.sql import pk_in
from tracks.models import Track

if TYPE_CHECKING:
    from accounts.models import User

Source = AuditEvent.Source
Kind = AuditEvent.Kind
ActorKind = AuditEvent.ActorKind


def acknowledge_policy(*, actor: User, version: PolicyVersion, request_meta: RequestMeta | None = None) -> bool:
    """Record that `actor` read a published version. Audited once; again is a no-op."""
    if version.published_at is None:
        raise ConsentError(gettext("Only a published policy version can be acknowledged."))
    with transaction.atomic():
        heads = lock_chain_heads([actor.pk])
        already = AuditEvent.objects.filter(
            artist=actor, kind=Kind.POLICY_ACKNOWLEDGED, policy_version=version
        ).exists()
        if already:
            return False
        append_events(
            heads,
            [
                event_row(
                    artist_id=actor.pk,
                    actor=actor,
                    kind=Kind.POLICY_ACKNOWLEDGED,
                    source=Source.POLICY_ACK,
                    now=timezone.now(),
                    request_meta=request_meta,
                    policy=version,
                )
            ],
        )
    return True


def reconfirm_consent(
    *,
    actor: User,
    version: PolicyVersion,
    tracks: QuerySet[Track],
    request_meta: RequestMeta | None = None,
) -> ChangeResult:
    """The artist confirms grants whose meaning `version` changes, so they do not lapse.

    Only the artist's own, still-granted consents of the changed purposes are
    touched; each gets `changed_at` now and one audit event, in one receipt.
    """
    purposes = list(version.purposes_changed.all())
    if not purposes:
        return ChangeResult()
    with transaction.atomic():
        heads = lock_chain_heads([actor.pk])
        rows = list(
            Consent.objects.select_for_update()
            .filter(
                track__in=tracks.filter(owner=actor).order_by().values("pk"),
                purpose__in=purposes,
                granted=True,
                changed_at__lt=version.published_at,
            )
            .select_related("track", "purpose")
            .order_by("track_id", "purpose__ordering")
        )
        if not rows:
            return ChangeResult()
        now = timezone.now()
        receipt_id = uuid.uuid4()
        Consent.objects.filter(pk__in=pk_in(row.pk for row in rows)).update(
            changed_at=now, changed_by=actor, changed_by_kind=ActorKind.ARTIST
        )
        append_events(
            heads,
            [
                event_row(
                    artist_id=actor.pk,
                    actor=actor,
                    kind=Kind.CONSENT_RECONFIRMED,
                    source=Source.WEB,
                    now=now,
                    request_meta=request_meta,
                    policy=version,
                    receipt_id=receipt_id,
                    track_id=row.track_id,
                    track_uuid=row.track.uuid,
                    track_title=row.track.title,
                    purpose=row.purpose,
                    old_value=GRANTED,
                    new_value=GRANTED,
                )
                for row in rows
            ],
        )
        counts: dict[str, dict[str, int]] = {}
        for row in rows:
            counts.setdefault(row.purpose.slug, {"granted": 0, "withdrawn": 0, "confirmed": 0})["confirmed"] += 1
        chain_heads = head_summary(heads, [actor.pk])
        queue_consent_change_notices(
            actor=actor,
            receipt_id=receipt_id,
            source=Source.WEB,
            cells=[ChangedCell(actor.pk, row.track.title, row.purpose.slug, row.purpose.name, True) for row in rows],
            chain_heads=chain_heads,
            what="reconfirmed",
        )
        return ChangeResult(receipt_id=receipt_id, counts=counts, event_count=len(rows), chain_heads=chain_heads)


def lapse_unconfirmed_grants(*, version: PolicyVersion) -> ChangeResult:
    """At the effective date, withdraw grants made under the old meaning and not confirmed.

    An audited change like any other (source policy_lapse, actor the system),
    and each artist is told, as for any change made on their behalf.
    """
    from consent.policy import grants_needing_reconfirmation

    total = ChangeResult()
    for purpose in version.purposes_changed.all():
        stale = grants_needing_reconfirmation(version).filter(purpose=purpose)
        result = change_consent(
            actor=None,
            tracks=Track.objects.filter(pk__in=stale.values("track_id")),
            changes={purpose.slug: False},
            source=Source.POLICY_LAPSE,
        )
        total.event_count += result.event_count
        total.counts.update(result.counts)
        total.chain_heads.update(result.chain_heads)
    return total
