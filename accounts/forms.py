from django import forms

from accounts.models import User


class SignupExtraForm(forms.Form):
    """Fields allauth's sign-up form lacks; allauth calls signup() after saving."""

    display_name = forms.CharField(
        max_length=150,
        label="Display name",
        help_text="Your artist or band name, as labels and emails will show it.",
        widget=forms.TextInput(attrs={"autocomplete": "nickname"}),
    )

    field_order = ["display_name"]

    def clean_display_name(self) -> str:
        name = " ".join(self.cleaned_data["display_name"].split())
        if not name:
            raise forms.ValidationError("Please enter the name you want to be shown.")
        return name

    def signup(self, request, user: User) -> None:
        user.display_name = self.cleaned_data["display_name"]
        user.save(update_fields=["display_name"])


class ProfileForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["display_name"]

    def clean_display_name(self) -> str:
        name = " ".join(self.cleaned_data["display_name"].split())
        if not name:
            raise forms.ValidationError("Please enter the name you want to be shown.")
        return name


class DeleteAccountForm(forms.Form):
    """Deleting an account asks for the address typed out: a click alone is too easy to make."""

    email = forms.CharField(
        label="Type your email address to confirm",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_email(self) -> str:
        typed = (self.cleaned_data.get("email") or "").strip()
        if typed.lower() != self.user.email.lower():
            raise forms.ValidationError("That is not the address of this account; nothing was deleted.")
        return typed
