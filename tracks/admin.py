from django.contrib import admin

from consent.services import RequestMeta
from creatorportal.admin_filters import LabelledValuesFilter
from tracks import services
from tracks.models import Track


@admin.register(Track)
class TrackAdmin(admin.ModelAdmin):
    """Read-mostly: staff can correct the descriptive fields; files and processing
    results come only from uploads."""

    list_display = ["__str__", "owner", "status", "container", "duration_seconds", "size_bytes", "created_at"]
    list_filter = ["status", ("container", LabelledValuesFilter), ("failure_code", LabelledValuesFilter), "created_at"]
    search_fields = ["title", "artist_name", "album", "isrc", "original_filename", "sha256", "owner__email", "uuid"]
    list_select_related = ["owner"]
    date_hierarchy = "created_at"
    raw_id_fields = ["owner"]
    fields = [
        "uuid",
        "owner",
        ("title", "artist_name"),
        ("album", "year", "isrc"),
        "status",
        ("failure_code", "failure_reason"),
        ("original_filename", "audio_file"),
        ("container", "codec", "duration_seconds"),
        ("bitrate", "sample_rate", "channels"),
        ("size_bytes", "sha256"),
        ("artwork", "artwork_thumbnail"),
        ("created_at", "updated_at", "processed_at"),
    ]
    readonly_fields = [
        "uuid",
        "owner",
        "status",
        "failure_code",
        "failure_reason",
        "original_filename",
        "audio_file",
        "container",
        "codec",
        "duration_seconds",
        "bitrate",
        "sample_rate",
        "channels",
        "size_bytes",
        "sha256",
        "artwork",
        "artwork_thumbnail",
        "created_at",
        "updated_at",
        "processed_at",
    ]

    def has_add_permission(self, request) -> bool:
        return False  # tracks arrive through the upload page, which validates them

    def get_deleted_objects(self, objs, request):
        """The service's plan, not Django's cascade (consent rows are PROTECT: the service withdraws them)."""
        deleted = [f"Track “{track}” — any consent it still grants is withdrawn first, and logged" for track in objs]
        perms_needed = set() if self.has_delete_permission(request) else {Track._meta.verbose_name}
        return deleted, {Track._meta.verbose_name_plural: len(objs)}, perms_needed, []

    # Through the service, one track at a time, so each deletion is audited
    # with the staff member as the actor and the files go after the commit.
    def delete_model(self, request, obj: Track) -> None:
        services.delete_track(
            track=obj, actor=request.user, request_meta=RequestMeta.from_request(request), from_admin=True
        )

    def delete_queryset(self, request, queryset) -> None:
        meta = RequestMeta.from_request(request)
        for track in queryset:
            services.delete_track(track=track, actor=request.user, request_meta=meta, from_admin=True)
