"""Consent receipts: what the artist can download and what their email carries.

Built from the audit events of one save, so a receipt says exactly what the
append-only log says. The fields follow the Kantara Initiative Consent Receipt
v1.1 (whose elements ISO/IEC TS 27560 carries into its receipts), plus the
portal's own detail; `schemas/consent-receipt.schema.json` describes all of it,
and every receipt is checked against that schema as it is built.
"""

from __future__ import annotations

import datetime
import functools
import json
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.urls import reverse
from jsonschema import Draft202012Validator

from consent import services
from consent.models import AuditEvent, Purpose

logger = logging.getLogger(__name__)

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "consent-receipt.schema.json"
KANTARA_VERSION = "KI-CR-v1.1.0"
SERVICE = "Hosting of the artist's uploaded tracks, and their use only where the artist opted in"

PII_CATEGORIES = [
    "Audio recordings uploaded by the artist (which may contain their voice)",
    "Track metadata: title, artist name, album, year, ISRC",
    "Cover artwork",
]
TERMINATION = (
    "Until withdrawn: the artist can withdraw in one step on the consent page at any time, effective at once. "
    "It also ends when the track or the account is deleted, and lapses if a new policy version changes what "
    "the purpose means and the artist does not confirm it again."
)
DEFAULTS_TERMINATION = (
    "Until the artist turns the default off; it applies only to tracks uploaded while it is on, and each "
    "of those can be withdrawn in one step."
)
DELEGATION_TERMINATION = (
    "Until the artist or the label ends the delegation, or the artist narrows it, on the delegations page; "
    "the label then loses every power at once."
)


@dataclass(frozen=True)
class PurposeTerms:
    """What a purpose means in a receipt's terms (Kantara purpose category, disclosure)."""

    category: str
    third_party: str = ""


# Purposes staff add later get their own name as category and no disclosure.
PURPOSE_TERMS = {
    Purpose.RECOMMENDATION: PurposeTerms("Personalised recommendations"),
    Purpose.FRAUD_DETECTION: PurposeTerms("Fraud prevention and detection"),
    Purpose.GENERATIVE_TRAINING: PurposeTerms("Research and development: training generative AI models"),
    "third_party_ai_training": PurposeTerms(
        "Disclosure to third parties: AI training by other companies",
        third_party="Other companies that train AI models, told through the track's public AI-use signals",
    ),
}

COLLECTION_METHODS: dict[str, str] = {
    AuditEvent.Source.WEB: "Web form: the artist's consent pages, signed in",
    AuditEvent.Source.UPLOAD: "Web form: the upload form, signed in",
    AuditEvent.Source.ACCOUNT_DEFAULT: "Upload default the artist set for new tracks",
    AuditEvent.Source.ADMIN: "Administration site: a staff action (staff may withdraw, never grant)",
    AuditEvent.Source.BULK: "Bulk edit by a label manager, within the scopes the artist delegated",
    AuditEvent.Source.CSV: "CSV import by a label manager, within the scopes the artist delegated",
    AuditEvent.Source.API: "API request",
    AuditEvent.Source.POLICY_LAPSE: "Automatic lapse: a new policy version changed the purpose, not confirmed again",
    AuditEvent.Source.POLICY_ACK: "Web form: policy acknowledgement",
    AuditEvent.Source.SYSTEM: "Automatic, by the portal",
}


class InvalidReceipt(Exception):
    """A receipt that does not match the published schema."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


# --- schema --------------------------------------------------------------------------------


@functools.cache
def receipt_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@functools.cache
def _validator() -> Draft202012Validator:
    schema = receipt_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def receipt_problems(receipt: dict) -> list[str]:
    """Every way `receipt` breaks the schema, as 'path: message' lines; empty when it is valid."""
    errors = sorted(_validator().iter_errors(receipt), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}" for error in errors]


def _invalid_receipt(receipt: dict, problems: list[str]) -> None:
    # The log line is what an operator (and, under test, the suite) looks for.
    logger.error("consent receipt %s does not match its schema: %s", receipt.get("receipt_id"), "; ".join(problems))
    if settings.CONSENT_RECEIPT_VALIDATION == "raise":
        raise InvalidReceipt(problems)


# --- building ------------------------------------------------------------------------------


def receipt_for(artist, receipt_id: uuid.UUID | str) -> dict | None:
    """The receipt of one save for `artist`, or None if they have no such save."""
    try:
        receipt_id = uuid.UUID(str(receipt_id))
    except ValueError:
        return None
    events = list(
        AuditEvent.objects.filter(artist=artist, receipt_id=receipt_id)
        .select_related("policy_version", "purpose", "subject_data")
        .order_by("seq")
    )
    return build_receipt(artist, events) if events else None


def build_receipt(artist, events: list[AuditEvent]) -> dict:
    """A consent receipt (Kantara CR v1.1 / ISO/IEC TS 27560) of one save, checked against the schema."""
    receipt = _assemble(artist, events)
    problems = receipt_problems(receipt)
    if problems:
        _invalid_receipt(receipt, problems)
    return receipt


def _assemble(artist, events: list[AuditEvent]) -> dict:
    first, last = events[0], events[-1]
    labels = _label_names(events)
    delegations = [
        _delegation_change(event, labels) for event in events if event.kind == AuditEvent.Kind.DELEGATION_CHANGED
    ]
    purposes = _purpose_changes(events)
    created = first.created_at.astimezone(datetime.UTC)
    policy_url = _policy_url(first)
    return {
        "version": KANTARA_VERSION,
        "jurisdiction": settings.CONSENT_JURISDICTION,
        "consentTimestamp": int(created.timestamp()),
        "collectionMethod": "; ".join(dict.fromkeys(COLLECTION_METHODS.get(e.source, e.source) for e in events)),
        "consentReceiptID": str(first.receipt_id),
        "language": "en",
        "piiPrincipalId": str(artist.pk),
        "piiControllers": [_controller()],
        "policyUrl": policy_url,
        "services": [{"service": SERVICE, "purposes": _kantara_purposes(first, purposes, delegations)}],
        "sensitive": False,
        "spiCat": [],
        "receipt_schema": f"{settings.SITE_URL}{reverse('consent:receipt_schema')}",
        "receipt_id": str(first.receipt_id),
        "timestamp": created.isoformat(),
        "kind": first.kind,
        "actor": {
            "kind": first.actor_kind,
            "is_principal": first.actor_id == artist.pk,
            "label": labels.get(first.label_id),
        },
        "source": first.source,
        "policy": {"version": first.policy_version.version if first.policy_version else None, "url": policy_url},
        "purposes": purposes,
        "delegations": delegations,
        "events": len(events),
        "chain": {"first_seq": first.seq, "last_seq": last.seq, "head_hash_after_change": last.hash},
    }


def _controller() -> dict:
    address = {key: value for key, value in settings.CONSENT_CONTROLLER_ADDRESS.items() if value}
    return {
        "piiController": settings.CONSENT_CONTROLLER_NAME,
        "onBehalf": False,
        "contact": settings.CONSENT_CONTROLLER_CONTACT,
        "address": {**address, "addressCountry": settings.CONSENT_JURISDICTION},
        "email": settings.CONSENT_CONTROLLER_EMAIL,
        "phone": settings.CONSENT_CONTROLLER_PHONE,
        "piiControllerUrl": settings.SITE_URL,
    }


def _policy_url(event: AuditEvent) -> str:
    if event.policy_version is not None:
        return f"{settings.SITE_URL}{event.policy_version.get_absolute_url()}"
    return f"{settings.SITE_URL}{reverse('policy:history')}"


def _label_names(events: list[AuditEvent]) -> dict[int | None, str]:
    # Through the events' own label reference: consent does not import the labels app above it.
    pks = [event.pk for event in events if event.label_id]
    if not pks:
        return {}
    return dict(AuditEvent.objects.filter(pk__in=pks).values_list("label_id", "label__name"))


def _purpose_changes(events: list[AuditEvent]) -> list[dict]:
    """Per purpose: the tracks now allowed and not allowed, or the new default for future uploads."""
    purposes: dict[str, dict] = {}
    for event in events:
        if event.kind == AuditEvent.Kind.DELEGATION_CHANGED or not event.purpose_slug:
            continue
        entry = purposes.setdefault(event.purpose_slug, _purpose_entry(event))
        granted = event.new_value == services.GRANTED
        if entry["scope"] == "tracks":
            target = {"track_uuid": str(event.track_uuid), "title": event.track_title}
            entry["granted" if granted else "not_granted"].append(target)
        else:
            entry["state"] = "granted" if granted else "not_granted"
    for entry in purposes.values():
        if entry["scope"] == "tracks":
            entry["tracks_affected"] = len(entry["granted"]) + len(entry["not_granted"])
            states = {"granted"} if entry["granted"] else set()
            states |= {"not_granted"} if entry["not_granted"] else set()
            entry["state"] = states.pop() if len(states) == 1 else "mixed"
    return list(purposes.values())


def _purpose_entry(event: AuditEvent) -> dict[str, Any]:
    on_tracks = event.kind != AuditEvent.Kind.DEFAULTS_CHANGED
    entry: dict[str, Any] = {
        "purpose": event.purpose_slug,
        "name": event.purpose.name if event.purpose else event.purpose_slug,
        "description": event.purpose.description if event.purpose else "",
        "scope": "tracks" if on_tracks else "future uploads",
        "state": "not_granted",
        "tracks_affected": 0,
    }
    if on_tracks:
        entry.update(granted=[], not_granted=[])
    return entry


def _delegation_change(event: AuditEvent, labels: dict[int | None, str]) -> dict:
    old, new = event.delegation_words
    return {
        "label": labels.get(event.label_id) or "a label",
        "purpose": event.purpose_slug or None,
        "purpose_name": event.purpose.name if event.purpose else None,
        "from": old,
        "to": new,
    }


def _kantara_purposes(first: AuditEvent, purposes: list[dict], delegations: list[dict]) -> list[dict]:
    """The Kantara `purposes` of the receipt's one service."""
    if delegations:
        label = delegations[0]["label"]
        return [
            {
                "purposeId": "delegation",
                "purpose": f"{label} may see your delegated tracks and manage their consent within the scopes you set.",
                "purposeCategory": ["Delegated consent management"],
                "consentType": "EXPLICIT",
                "piiCategory": [PII_CATEGORIES[1], "Consent settings of the tracks"],
                "primaryPurpose": False,
                "termination": DELEGATION_TERMINATION,
                "thirdPartyDisclosure": True,
                "thirdPartyName": label,
            }
        ]
    termination = DEFAULTS_TERMINATION if first.kind == AuditEvent.Kind.DEFAULTS_CHANGED else TERMINATION
    return [_kantara_purpose(entry, termination) for entry in purposes]


def _kantara_purpose(entry: dict, termination: str) -> dict:
    terms = PURPOSE_TERMS.get(entry["purpose"], PurposeTerms(entry["name"]))
    purpose = {
        "purposeId": entry["purpose"],
        "purpose": f"{entry['name']}: {entry['description']}" if entry["description"] else entry["name"],
        "purposeCategory": [terms.category],
        # Opt-in only: no use rests on anything but the artist's explicit act.
        "consentType": "EXPLICIT",
        "piiCategory": PII_CATEGORIES,
        "primaryPurpose": False,
        "termination": termination,
        "thirdPartyDisclosure": bool(terms.third_party),
    }
    if terms.third_party:
        purpose["thirdPartyName"] = terms.third_party
    return purpose
