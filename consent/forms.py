from __future__ import annotations

from django import forms

from consent.models import AuditEvent, Purpose
from consent.selectors import AuditFilter

ACTOR_CHOICES = [
    ("", "Anyone"),
    ("you", "You"),
    (AuditEvent.ActorKind.STAFF, "Staff"),
    (AuditEvent.ActorKind.LABEL, "A label"),
    (AuditEvent.ActorKind.SYSTEM, "The system"),
]


class AuditFilterForm(forms.Form):
    track = forms.UUIDField(required=False, widget=forms.HiddenInput)
    # The link in a receipt email narrows the log to that one save.
    receipt = forms.UUIDField(required=False, widget=forms.HiddenInput)
    title = forms.CharField(required=False, max_length=200, label="Track title contains")
    purpose = forms.ChoiceField(required=False)
    actor = forms.ChoiceField(required=False, choices=ACTOR_CHOICES, label="Who acted")
    source = forms.ChoiceField(required=False, choices=[("", "Any source"), *AuditEvent.Source.choices])
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, purposes: list[Purpose], **kwargs):
        super().__init__(*args, **kwargs)
        purpose = self.fields["purpose"]
        assert isinstance(purpose, forms.ChoiceField)
        purpose.choices = [("", "Any purpose"), *((p.slug, p.name) for p in purposes)]

    def clean(self):
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            raise forms.ValidationError("The start date is after the end date.")
        return data

    def to_filter(self) -> AuditFilter:
        data = self.cleaned_data
        return AuditFilter(
            track_uuid=data.get("track"),
            receipt_id=data.get("receipt"),
            title=(data.get("title") or "").strip(),
            purpose=data.get("purpose") or "",
            actor_kind=data.get("actor") or "",
            source=data.get("source") or "",
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
        )


class ConfirmForm(forms.Form):
    understand = forms.BooleanField(
        required=True,
        error_messages={"required": "Tick the box to confirm, or go back without granting."},
    )
