"""Consent receipts: what the artist can download and what their email carries.

Built from the audit events of one save, so a receipt says exactly what the
append-only log says.
"""

from __future__ import annotations

import datetime
import uuid

from django.conf import settings

from consent import services
from consent.models import AuditEvent


def receipt_for(artist, receipt_id: uuid.UUID | str) -> dict | None:
    """The receipt of one save for `artist`, or None if they have no such save."""
    events = list(
        AuditEvent.objects.filter(artist=artist, receipt_id=receipt_id)
        .select_related("policy_version", "purpose", "subject_data")
        .order_by("seq")
    )
    return build_receipt(artist, events) if events else None


def build_receipt(artist, events: list[AuditEvent]) -> dict:
    """A consent record in the manner of ISO/IEC TS 27560 and the Kantara Consent Receipt."""
    first, last = events[0], events[-1]
    policy = first.policy_version
    purposes: dict[str, dict] = {}
    for event in events:
        entry = purposes.setdefault(
            event.purpose_slug,
            {
                "purpose": event.purpose_slug,
                "name": event.purpose.name if event.purpose else event.purpose_slug,
                "description": event.purpose.description if event.purpose else "",
                "scope": "future uploads" if event.kind == AuditEvent.Kind.DEFAULTS_CHANGED else "tracks",
                "granted": [],
                "not_granted": [],
            },
        )
        target = {"track_uuid": str(event.track_uuid), "title": event.track_title} if event.track_uuid else {}
        entry["granted" if event.new_value == services.GRANTED else "not_granted"].append(target)
    for entry in purposes.values():
        entry["state"] = (
            "granted"
            if entry["granted"] and not entry["not_granted"]
            else "not_granted"
            if entry["not_granted"] and not entry["granted"]
            else "mixed"
        )
        entry["tracks_affected"] = len(entry["granted"]) + len(entry["not_granted"])
        if entry["scope"] != "tracks":
            entry.pop("granted"), entry.pop("not_granted")
    return {
        "schema": "consent-record; fields after ISO/IEC TS 27560:2023 and Kantara Consent Receipt v1.1",
        "version": "1",
        "receipt_id": str(first.receipt_id),
        "timestamp": first.created_at.astimezone(datetime.UTC).isoformat(),
        "controller": {"name": "Creator Consent Portal", "url": settings.SITE_URL},
        "principal": {"id": str(artist.pk), "name": artist.display_name, "email": artist.email},
        "actor": {"kind": first.actor_kind, "is_principal": first.actor_id == artist.pk},
        "collection_method": first.get_source_display(),
        "source": first.source,
        "policy": {
            "version": policy.version if policy else None,
            "url": f"{settings.SITE_URL}{policy.get_absolute_url()}" if policy else None,
        },
        "purposes": list(purposes.values()),
        "events": len(events),
        "chain": {"first_seq": first.seq, "last_seq": last.seq, "head_hash_after_change": last.hash},
    }
