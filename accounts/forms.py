from django import forms
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from accounts.locale import time_zone_choices, valid_time_zone
from accounts.models import User


def _clean_name(value: str) -> str:
    name = " ".join(value.split())
    if not name:
        raise forms.ValidationError(_("Please enter the name you want to be shown."))
    return name


class SignupExtraForm(forms.Form):
    """Fields allauth's sign-up form lacks; allauth calls signup() after saving."""

    display_name = forms.CharField(
        max_length=150,
        label=_("Display name"),
        help_text=_("Your artist or band name, as labels and emails will show it."),
        widget=forms.TextInput(attrs={"autocomplete": "nickname"}),
    )
    # Filled in by static/js/time-zone-hint.js from the browser; anything this
    # system does not know as an IANA zone is ignored, so it falls back to UTC.
    time_zone = forms.CharField(required=False, widget=forms.HiddenInput(attrs={"data-time-zone-hint": ""}))

    field_order = ["display_name"]

    def clean_display_name(self) -> str:
        return _clean_name(self.cleaned_data["display_name"])

    def clean_time_zone(self) -> str:
        return valid_time_zone(self.cleaned_data.get("time_zone")) or "UTC"

    def signup(self, request, user: User) -> None:
        user.display_name = self.cleaned_data["display_name"]
        user.time_zone = self.cleaned_data.get("time_zone") or "UTC"
        # The language the browser asked for while signing up: the verification
        # email already went out in it, and later emails follow it until the
        # user chooses one in their settings.
        user.browser_language = translation.get_language() or ""
        user.save(update_fields=["display_name", "time_zone", "browser_language"])


class ProfileForm(forms.ModelForm):
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=time_zone_choices)

    class Meta:
        model = User
        fields = ["display_name", "language", "time_zone"]
        labels = {"display_name": _("Display name"), "language": _("Language")}
        help_texts = {
            "language": _("Pages and emails use this language. The first choice follows your browser."),
            "time_zone": _("Times on every page and in every email are shown in this time zone."),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        browser = self.instance.browser_language or translation.get_language() or "en-gb"
        browser_name = translation.get_language_info(browser)["name_local"]
        language = self.fields["language"]
        assert isinstance(language, forms.ChoiceField)
        browser_choice = ("", _("Browser (%(language)s)") % {"language": browser_name})
        language.choices = [browser_choice, *((code, name) for code, name in settings.LANGUAGES)]
        self.fields["time_zone"].help_text = (self._meta.help_texts or {})["time_zone"]
        # static/js/time-zone-hint.js proposes the browser's zone to a user still on the UTC default.
        if self.instance.time_zone == "UTC":
            self.fields["time_zone"].widget.attrs["data-time-zone-hint"] = "suggest"

    def clean_display_name(self) -> str:
        return _clean_name(self.cleaned_data["display_name"])


class DeleteAccountForm(forms.Form):
    """Deleting an account asks for the address typed out: a click alone is too easy to make."""

    email = forms.CharField(
        label=_("Type your email address to confirm"),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_email(self) -> str:
        typed = (self.cleaned_data.get("email") or "").strip()
        if typed.lower() != self.user.email.lower():
            raise forms.ValidationError(_("That is not the address of this account; nothing was deleted."))
        return typed
