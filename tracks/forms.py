from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from tracks import artwork, hooks
from tracks.metadata import FORMATS
from tracks.models import Track
from tracks.selectors import DEFAULT_SORT
from tracks.services import clean_filename
from tracks.validators import MIN_YEAR, max_year, normalise_isrc, validate_year

# A hint for the file picker only; the server decides by content.
AUDIO_ACCEPT = ",".join(
    sorted({f.mime_type for f in FORMATS.values()} | {f".{f.extension}" for f in FORMATS.values()} | {".aif"})
)


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data] if data else []
        if not files and self.required:
            raise forms.ValidationError(self.error_messages["required"], code="required")
        return list(files)


class UploadForm(forms.Form):
    # The field's name is the form's (and the API's) "files"; the stubs see BaseForm.files, which the
    # metaclass leaves alone because declared fields are taken off the class.
    files = MultipleFileField(  # type: ignore[assignment]
        label=_("Audio files"),
        help_text=_("MP3, FLAC, WAV, AIFF, Ogg Vorbis, Opus or M4A (AAC)."),
        error_messages={"required": _("Choose at least one audio file to upload.")},
        widget=MultipleFileInput(attrs={"accept": AUDIO_ACCEPT}),
    )

    # Opt-in per upload, every box unticked; the choices come from consent (tracks.hooks).
    consent = forms.MultipleChoiceField(
        label=_("Allow from the start (optional)"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": _("That use cannot be chosen on the upload form.")},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        consent = self.fields["consent"]
        assert isinstance(consent, forms.ChoiceField)
        consent.choices = hooks.upload_choices()
        max_files = settings.TRACKS_MAX_FILES_PER_REQUEST
        max_mb = settings.TRACKS_MAX_UPLOAD_BYTES / (1024 * 1024)
        self.fields["files"].help_text = gettext(
            "MP3, FLAC, WAV, AIFF, Ogg Vorbis, Opus or M4A (AAC); "
            "up to %(max_files)d files at once, %(max_mb)s MB each."
        ) % {"max_files": max_files, "max_mb": f"{max_mb:g}"}

    def clean_files(self):
        files = self.cleaned_data["files"]
        max_files = settings.TRACKS_MAX_FILES_PER_REQUEST
        if len(files) > max_files:
            raise forms.ValidationError(
                gettext("You chose %(count)d files; upload at most %(max)d at a time.")
                % {"count": len(files), "max": max_files},
                code="too_many_files",
            )
        return files


class TrackFilterForm(forms.Form):
    q = forms.CharField(label=_("Search titles"), required=False, max_length=200)
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("Any status")), *Track.Status.choices]
    )
    sort = forms.ChoiceField(
        label=_("Sort by"),
        required=False,
        choices=[
            ("newest", _("Newest first")),
            ("oldest", _("Oldest first")),
            ("title", _("Title, A to Z")),
            ("-title", _("Title, Z to A")),
            ("duration", _("Shortest first")),
            ("-duration", _("Longest first")),
            ("status", _("Status")),
        ],
    )
    per_page = forms.TypedChoiceField(
        label=_("Per page"),
        required=False,
        coerce=int,
        empty_value=25,  # type: ignore[arg-type]  # Django takes any empty value; the stubs say str
        choices=[(25, "25"), (50, "50"), (100, "100")],
    )

    def filters(self) -> dict:
        data = self.cleaned_data if self.is_valid() else {}
        return {
            "search": (data.get("q") or "").strip(),
            "status": data.get("status") or "",
            "sort": data.get("sort") or DEFAULT_SORT,
        }

    def page_size(self) -> int:
        return (self.cleaned_data.get("per_page") if self.is_valid() else None) or 25


class TrackEditForm(forms.ModelForm):
    artwork_upload = forms.FileField(
        label=_("Replace artwork"),
        required=False,
        help_text=_("JPEG, PNG or WebP. It is re-encoded and its embedded data (EXIF, location) removed."),
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )
    remove_artwork = forms.BooleanField(label=_("Remove the current artwork"), required=False)
    # Longer than the stored 12 characters: people paste ISRCs with hyphens and spaces.
    isrc = forms.CharField(
        label="ISRC",
        max_length=32,
        required=False,
        help_text=_("International Standard Recording Code, e.g. GB-AYE-25-00001."),
    )

    class Meta:
        model = Track
        fields = ["title", "artist_name", "album", "year", "isrc"]
        labels = {"title": _("Title"), "artist_name": _("Artist"), "album": _("Album"), "year": _("Year")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.renditions: dict[str, artwork.Rendition] | None = None
        self.fields["title"].required = True
        self.fields["year"].widget.attrs.update({"min": MIN_YEAR, "max": max_year()})
        if not (self.instance and self.instance.artwork):
            del self.fields["remove_artwork"]

    def clean_title(self) -> str:
        return self.cleaned_data["title"].strip()

    def clean_isrc(self) -> str:
        value = self.cleaned_data.get("isrc", "").strip()
        return normalise_isrc(value) if value else ""

    def clean_year(self):
        value = self.cleaned_data.get("year")
        validate_year(value)
        return value

    def clean_artwork_upload(self):
        upload = self.cleaned_data.get("artwork_upload")
        if not upload:
            return None
        name = clean_filename(upload.name)
        if upload.size > settings.ARTWORK_MAX_UPLOAD_BYTES:
            limit = artwork.human_size(settings.ARTWORK_MAX_UPLOAD_BYTES)
            raise forms.ValidationError(
                gettext("%(name)s: the image is larger than %(limit)s.") % {"name": name, "limit": limit},
                code="artwork_too_large",
            )
        upload.seek(0)
        try:
            self.renditions = artwork.make_renditions(upload)
        except artwork.ArtworkError as exc:
            raise forms.ValidationError(f"{name}: {exc.reason}", code=exc.code) from exc
        return upload
