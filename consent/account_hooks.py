"""consent's part in deleting an account and in "download my data" (registered in ConsentConfig.ready).

Deletion: withdraw every grant and upload default first (step 10), delete the
tracks with an audit event each (step 30, after the labels were told at 20),
and at the end close the artist's chain and erase the personal data in it
(step 90). Export: current consent, the whole audit log with its chain, and
every receipt.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import groupby
from typing import Any

from django.utils.translation import gettext, ngettext

from accounts.hooks import AccountDeletion, ErasureStep, ExportSection, erasure_steps, export_sections
from consent import services
from consent.chain import BODY_COLUMNS, HASHED_FIELDS_BY_VERSION, OPTIONAL_HASHED_FIELDS
from consent.models import AuditChainHead, AuditEvent, Consent, Purpose, UploadDefault
from consent.receipts import build_receipt
from platformkit.request_meta import RequestMeta
from tracks.models import Track

EXPORT_CHUNK = 2000


def _request_meta(deletion: AccountDeletion) -> RequestMeta | None:
    return RequestMeta.from_request(deletion.request) if deletion.request is not None else None


def _purpose_names() -> dict[str, str]:
    # Seeded names are in the catalogue (consent/seeded_text.py); said in the page's language.
    return {slug: gettext(name) for slug, name in Purpose.objects.values_list("slug", "name")}


# --- Erasure steps ----------------------------------------------------------------------------


def withdraw_everything(deletion: AccountDeletion) -> None:
    summary = services.withdraw_everything_for_deletion(
        actor=deletion.actor, artist=deletion.user, request_meta=_request_meta(deletion)
    )
    names = _purpose_names()
    if summary.withdrawn:
        parts = [
            ngettext("%(purpose)s on %(count)d track", "%(purpose)s on %(count)d tracks", n)
            % {"purpose": names.get(slug, slug), "count": n}
            for slug, n in summary.withdrawn.items()
        ]
        deletion.note(
            gettext("Every permission you had given was withdrawn and logged: %(parts)s.") % {"parts": "; ".join(parts)}
        )
    else:
        deletion.note(gettext("You had given no permission on any track, so there was nothing to withdraw."))
    if summary.defaults_switched_off:
        switched = ", ".join(names.get(slug, slug) for slug in summary.defaults_switched_off)
        deletion.note(
            gettext("Your defaults for future uploads were switched off: %(purposes)s.") % {"purposes": switched}
        )
    deletion.summary["receipt_ids"] = summary.receipt_ids


def describe_withdrawal(user) -> str:
    granted = Consent.objects.filter(track__owner=user, granted=True)
    cells, tracks = granted.count(), granted.values("track_id").distinct().count()
    if not cells:
        return gettext("You have given no permission on any track, so nothing needs withdrawing.")
    return ngettext(
        "Every permission you have given (%(cells)d on %(tracks)d track) is withdrawn first, and each withdrawal "
        "is logged, so every system that relies on the portal sees it.",
        "Every permission you have given (%(cells)d on %(tracks)d tracks) is withdrawn first, and each withdrawal "
        "is logged, so every system that relies on the portal sees it.",
        tracks,
    ) % {"cells": cells, "tracks": tracks}


def delete_tracks(deletion: AccountDeletion) -> None:
    deleted = services.delete_tracks_for_deletion(
        actor=deletion.actor, artist=deletion.user, request_meta=_request_meta(deletion)
    )
    deletion.summary["tracks_deleted"] = deleted
    deletion.note(
        ngettext(
            "%(count)d track and its audio and artwork files were deleted.",
            "%(count)d tracks and their audio and artwork files were deleted.",
            deleted,
        )
        % {"count": deleted}
    )


def describe_tracks(user) -> str:
    count = Track.objects.filter(owner=user).count()
    return ngettext(
        "Your %(count)d track, with its audio and artwork files, is deleted.",
        "Your %(count)d tracks, with their audio and artwork files, are deleted.",
        count,
    ) % {"count": count}


def close_chain(deletion: AccountDeletion) -> None:
    head = services.record_account_deleted(
        actor=deletion.actor, artist=deletion.user, request_meta=_request_meta(deletion)
    )
    services.erase_personal_data(user_id=deletion.user.pk, reason="account deleted")
    deletion.summary["chain_head"] = head


# --- Export sections --------------------------------------------------------------------------


def current_consent(user) -> dict[str, Any]:
    purposes = list(Purpose.objects.all())
    rows: dict[int, dict[str, Consent]] = {}
    for consent in Consent.objects.filter(track__owner=user).select_related("purpose", "policy_version"):
        rows.setdefault(consent.track_id, {})[consent.purpose.slug] = consent
    defaults = dict(UploadDefault.objects.filter(artist=user).values_list("purpose__slug", "granted"))

    def state(consent: Consent | None) -> dict[str, Any]:
        if consent is None:
            return {"granted": False, "changed_at": None, "changed_by": None, "policy_version": None}
        return {
            "granted": consent.granted,
            "changed_at": consent.changed_at,
            "changed_by": consent.changed_by_kind or None,
            "policy_version": consent.policy_version.version,
        }

    return {
        "note": "No record means not granted: nothing is used without your opt-in.",
        "purposes": [{"slug": p.slug, "name": p.name, "description": p.description} for p in purposes],
        "tracks": [
            {
                "uuid": track_uuid,
                "title": title,
                "consent": {p.slug: state(rows.get(pk, {}).get(p.slug)) for p in purposes},
            }
            for pk, track_uuid, title in Track.objects.filter(owner=user)
            .order_by("created_at", "pk")
            .values_list("pk", "uuid", "title")
        ],
        "upload_defaults": {p.slug: bool(defaults.get(p.slug, False)) for p in purposes},
    }


_EVENT_COLUMNS = (
    "prev_hash",
    "hash",
    *BODY_COLUMNS,
    "actor_data__key",
    "actor_data__ip",
    "actor_data__user_agent",
    "subject_data__key",
    "subject_data__track_title",
)


def _event_rows(user) -> Iterator[dict[str, Any]]:
    events = AuditEvent.objects.filter(artist=user).order_by("seq").values_list(*_EVENT_COLUMNS)
    for row in events.iterator(chunk_size=EXPORT_CHUNK):
        record = dict(zip(_EVENT_COLUMNS, row, strict=True))
        personal = {
            "ip": record.pop("actor_data__ip") or "",
            "user_agent": record.pop("actor_data__user_agent") or "",
            "actor_data_key": record.pop("actor_data__key") or "",
            "track_title": record.pop("subject_data__track_title") or "",
            "subject_data_key": record.pop("subject_data__key") or "",
        }
        yield {**record, "personal": personal}


def audit_log(user) -> dict[str, Any]:
    head = AuditChainHead.objects.filter(artist_id=user.pk).values("seq", "hash").first()
    return {
        "chain_head": head,
        "how_to_verify": {
            "hash": "sha256(prev_hash + canonical JSON of the event), chained from 64 zeros",
            "canonical_json": "sorted keys, no whitespace, values as strings (null stays null), "
            "timestamps in UTC ISO 8601 with microseconds",
            "fields_by_chain_version": {str(v): list(fields) for v, fields in HASHED_FIELDS_BY_VERSION.items()},
            "fields_hashed_only_when_set": list(OPTIONAL_HASHED_FIELDS),
            "personal_data": "version 1 hashes ip, user_agent and track_title themselves; version 2 hashes "
            "actor_data_digest = HMAC-SHA256(actor_data_key, canonical JSON of ip and user_agent) and "
            "subject_data_digest = HMAC-SHA256(subject_data_key, canonical JSON of track_title)",
        },
        "events": _event_rows(user),
    }


def receipts(user) -> Iterator[dict[str, Any]]:
    """Every receipt of the artist's log, rebuilt from the log as the receipt emails are."""
    events = (
        AuditEvent.objects.filter(artist=user, receipt_id__isnull=False)
        .select_related("policy_version", "purpose", "subject_data")
        .order_by("seq")
    )
    # One save's events are contiguous in its artist's chain (one transaction
    # under the chain lock), so grouping consecutive rows is grouping by save.
    for _receipt_id, group in groupby(events.iterator(chunk_size=EXPORT_CHUNK), key=lambda e: e.receipt_id):
        yield build_receipt(user, list(group))


def register() -> None:
    for step in (
        ErasureStep("consent.withdraw", withdraw_everything, order=10, describe=describe_withdrawal),
        ErasureStep("consent.delete_tracks", delete_tracks, order=30, describe=describe_tracks),
        ErasureStep("consent.close_chain", close_chain, order=90),
    ):
        erasure_steps.register(step)
    for section in (
        ExportSection(
            "consent/current.json",
            current_consent,
            order=30,
            description="What each of your tracks currently allows, purpose by purpose, and your "
            "defaults for future uploads.",
        ),
        ExportSection(
            "consent/audit_log.json",
            audit_log,
            order=40,
            description="Your whole audit log with its hash chain and how to check it yourself.",
        ),
        ExportSection(
            "consent/receipts.json",
            receipts,
            order=50,
            description="Every consent receipt, one per save, as emailed to you.",
        ),
    ):
        export_sections.register(section)
