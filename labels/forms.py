from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy
from django.utils.translation import gettext_lazy as _

from consent.confirmation import needs_own_confirmation
from consent.models import Purpose
from labels.models import Delegation


class ScopesForm(forms.Form):
    """Purpose by purpose, what the label may do; a separate box for each confirmation purpose."""

    def __init__(self, *args, purposes: list[Purpose], initial_scopes: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.purposes = purposes
        initial_scopes = initial_scopes or {}
        for purpose in purposes:
            self.fields[f"scope_{purpose.slug}"] = forms.ChoiceField(
                # Seeded purpose names and the scope words are in the catalogue (consent/seeded_text.py).
                label=gettext_lazy(purpose.name),
                # The scope words are translated where they are defined (consent/vocabulary.py).
                choices=Delegation.Scope.choices,
                initial=initial_scopes.get(purpose.slug, Delegation.Scope.NONE),
                widget=forms.RadioSelect,
                help_text=gettext_lazy(purpose.description) if purpose.description else "",
            )
            if needs_own_confirmation(purpose):
                # Not shown on this form: the confirmation is a page of its own
                # (see labels.views._confirmation_page), which sets it.
                self.fields[f"confirm_{purpose.slug}"] = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def scopes(self) -> dict[str, str]:
        return {p.slug: self.cleaned_data[f"scope_{p.slug}"] for p in self.purposes}

    def confirmed(self) -> set[str]:
        return {p.slug for p in self.purposes if self.cleaned_data.get(f"confirm_{p.slug}")}

    def unconfirmed(self, previous: dict[str, str] | None = None) -> list[Purpose]:
        """Confirmation purposes newly let to be granted by the label, not yet confirmed."""
        previous = previous or {}
        return [
            p
            for p in self.purposes
            if needs_own_confirmation(p)
            and self.cleaned_data.get(f"scope_{p.slug}") == Delegation.Scope.GRANT_WITHDRAW
            and previous.get(p.slug) != Delegation.Scope.GRANT_WITHDRAW
            and not self.cleaned_data.get(f"confirm_{p.slug}")
        ]


class LabelForm(forms.Form):
    name = forms.CharField(max_length=150, label=_("Label name"))


class EmailForm(forms.Form):
    email = forms.EmailField(label=_("Email address"))


class JoinForm(forms.Form):
    label = forms.SlugField(max_length=80, label=_("Label identifier"), help_text=_("The label gives you this."))


class ImportForm(forms.Form):
    file = forms.FileField(label=_("CSV file"))
    confirm_generative = forms.BooleanField(
        required=False, label=_("I confirm granting purposes that need their own confirmation where the file says so.")
    )
