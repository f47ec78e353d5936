from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from public import services
from public.models import ArtistPage, DistributionCopy, PublicTrack


@admin.register(PublicTrack)
class PublicTrackAdmin(admin.ModelAdmin):
    """Read-only: only the artist makes a track public."""

    list_display = ["track", "is_public", "changed_at"]
    list_filter = ["is_public"]
    search_fields = ["track__title", "track__uuid", "track__owner__email"]
    raw_id_fields = ["track"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ArtistPage)
class ArtistPageAdmin(admin.ModelAdmin):
    list_display = ["artist", "uuid", "created_at"]
    search_fields = ["artist__email", "artist__display_name", "uuid"]
    readonly_fields = ["artist", "uuid", "created_at"]

    def has_add_permission(self, request):
        return False


@admin.register(DistributionCopy)
class DistributionCopyAdmin(admin.ModelAdmin):
    """Progress of the copies; staff may ask for a rebuild, never edit what a copy says."""

    list_display = ["track", "status", "embedded_granted", "has_xmp", "has_c2pa", "attempts", "built_at", "last_error"]
    list_filter = ["status", "has_xmp", "has_c2pa"]
    search_fields = ["track__title", "track__uuid"]
    actions = ["rebuild"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Rebuild the selected copies"))
    def rebuild(self, request, queryset):
        count = services.request_rebuild(track_ids=list(queryset.values_list("track_id", flat=True)))
        messages.success(
            request,
            ngettext("%(count)d copy will be rebuilt.", "%(count)d copies will be rebuilt.", count) % {"count": count},
        )
