from __future__ import annotations

from django import forms
from django.utils.translation import gettext, gettext_lazy, pgettext_lazy

from consent import selectors
from consent.models import AuditEvent, Purpose
from consent.selectors import AuditFilter
from consent.vocabulary import ActorKind

ACTOR_CHOICES = [
    ("", gettext_lazy("Anyone")),
    (selectors.YOU, gettext_lazy("You")),
    (AuditEvent.ActorKind.STAFF, gettext_lazy("Staff")),
    (AuditEvent.ActorKind.LABEL, gettext_lazy("A label")),
    (AuditEvent.ActorKind.SYSTEM, gettext_lazy("The system")),
]


class AuditFilterForm(forms.Form):
    track = forms.UUIDField(required=False, widget=forms.HiddenInput)
    # The link in a receipt email narrows the log to that one save.
    receipt = forms.UUIDField(required=False, widget=forms.HiddenInput)
    title = forms.CharField(required=False, max_length=200, label=gettext_lazy("Track title contains"))
    purpose = forms.ChoiceField(required=False)
    actor = forms.ChoiceField(required=False, choices=ACTOR_CHOICES, label=gettext_lazy("Who acted"))
    source = forms.ChoiceField(required=False, choices=[("", gettext_lazy("Any source")), *AuditEvent.Source.choices])
    date_from = forms.DateField(
        required=False, label=gettext_lazy("From"), widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label=pgettext_lazy("end of a date range", "To"), widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, purposes: list[Purpose], **kwargs):
        super().__init__(*args, **kwargs)
        purpose = self.fields["purpose"]
        assert isinstance(purpose, forms.ChoiceField)
        purpose.choices = [("", gettext_lazy("Any purpose")), *((p.slug, gettext(p.name)) for p in purposes)]

    def clean(self):
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            raise forms.ValidationError(gettext_lazy("The start date is after the end date."))
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


class CatalogueFilterForm(forms.Form):
    """The query string of every catalogue (the artist's matrix and track list, a label's catalogue).

    A bad value is reported on the field and the list shows unfiltered, never a 500.
    """

    q = forms.CharField(required=False, max_length=200, label=gettext_lazy("Title or ISRC"))
    # "use", not "purpose": a label's bulk form posts its own "purpose" boxes beside these keys.
    use = forms.ChoiceField(required=False, label=gettext_lazy("Use"))
    state = forms.ChoiceField(
        required=False,
        label=gettext_lazy("State"),
        choices=[
            ("", gettext_lazy("Any state")),
            (selectors.GRANTED, gettext_lazy("Granted")),
            (selectors.WITHDRAWN, gettext_lazy("Withdrawn")),
            (selectors.LAPSED, gettext_lazy("Lapsed (policy change)")),
            (selectors.NEVER, gettext_lazy("Never granted")),
        ],
    )
    changed_by = forms.ChoiceField(
        required=False,
        label=gettext_lazy("Last changed by"),
        choices=[
            ("", gettext_lazy("Anyone")),
            (selectors.YOU, gettext_lazy("The artist")),
            (ActorKind.LABEL, gettext_lazy("A label")),
            (ActorKind.STAFF, gettext_lazy("Staff")),
            (ActorKind.SYSTEM, gettext_lazy("Policy (the system)")),
        ],
    )
    changed_from = forms.DateField(
        required=False, label=gettext_lazy("Changed from"), widget=forms.DateInput(attrs={"type": "date"})
    )
    changed_to = forms.DateField(
        required=False, label=gettext_lazy("Changed to"), widget=forms.DateInput(attrs={"type": "date"})
    )
    sort = forms.ChoiceField(
        required=False,
        label=gettext_lazy("Sort"),
        choices=[
            ("newest", gettext_lazy("Newest first")),
            ("oldest", gettext_lazy("Oldest first")),
            ("title", gettext_lazy("Title, A to Z")),
            ("-title", gettext_lazy("Title, Z to A")),
            ("isrc", gettext_lazy("ISRC")),
        ],
    )
    # The keys that make up the filter (sort and page are view state), for links and bulk changes.
    FILTER_KEYS = ("q", "use", "state", "changed_by", "changed_from", "changed_to")

    def __init__(self, data=None, *, purposes: list[Purpose], prefix_id: str = "cf", **kwargs):
        super().__init__(data, auto_id=f"{prefix_id}-%s", **kwargs)
        use = self.fields["use"]
        assert isinstance(use, forms.ChoiceField)
        use.choices = [("", gettext_lazy("Any use")), *((p.slug, p.name) for p in purposes)]

    def filter_fields(self) -> list:
        """The fields that narrow the list (a catalogue with its own sort renders these only)."""
        return [self[name] for name in self.FILTER_KEYS]

    def to_filter(self) -> selectors.TrackFilter:
        if not self.is_bound or not self.is_valid():
            return selectors.TrackFilter()
        data = self.cleaned_data
        return selectors.TrackFilter(
            q=data["q"].strip(),
            purpose=data["use"],
            state=data["state"],
            changed_by=data["changed_by"],
            changed_from=data["changed_from"],
            changed_to=data["changed_to"],
            sort=data["sort"] or "newest",
        )

    def is_filtering(self) -> bool:
        return self.is_bound and self.is_valid() and any(self.cleaned_data.get(k) for k in self.FILTER_KEYS)

    def filter_params(self) -> dict[str, str]:
        """The filter's own keys as they came in, valid ones only."""
        if not self.is_bound or not self.is_valid():
            return {}
        return {k: str(self.data[k]) for k in self.FILTER_KEYS if self.cleaned_data.get(k)}
