from __future__ import annotations

from collections import defaultdict

from django.contrib import admin, messages

from consent import services
from consent.models import AuditEvent, Consent, PolicyVersion, Purpose, UploadDefault
from consent.services import ConsentError, RequestMeta
from tracks.models import Track


@admin.register(Purpose)
class PurposeAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "requires_confirmation", "ordering"]
    ordering = ["ordering", "id"]
    search_fields = ["name", "slug"]

    def get_readonly_fields(self, request, obj=None):
        # The slug is how the audit log and the API name a purpose: fixed once created.
        return ["slug"] if obj is not None else []

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PolicyVersion)
class PolicyVersionAdmin(admin.ModelAdmin):
    list_display = ["version", "published_at", "effective_at", "is_material"]
    filter_horizontal = ["purposes_changed"]

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Consent)
class ConsentAdmin(ReadOnlyAdmin):
    list_display = [
        "track",
        "owner",
        "purpose",
        "granted",
        "changed_at",
        "changed_by",
        "changed_by_kind",
        "policy_version",
    ]
    list_filter = ["purpose", "granted", "changed_by_kind", "policy_version", "changed_at"]
    search_fields = ["track__title", "track__uuid", "track__owner__email"]
    list_select_related = ["track__owner", "purpose", "changed_by", "policy_version"]
    actions = ["withdraw_selected"]

    @admin.display(description="Artist")
    def owner(self, obj):
        return obj.track.owner

    def has_withdraw_permission(self, request):
        return request.user.is_active and request.user.is_staff and self.has_view_permission(request)

    @admin.action(description="Withdraw selected consents", permissions=["withdraw"])
    def withdraw_selected(self, request, queryset):
        # Staff may only withdraw: the service refuses any grant by staff anyway.
        states: dict = defaultdict(dict)
        for track_uuid, slug in queryset.filter(granted=True).values_list("track__uuid", "purpose__slug"):
            states[track_uuid][slug] = False
        if not states:
            self.message_user(request, "None of the selected consents is granted; nothing to withdraw.", messages.INFO)
            return
        try:
            result = services.set_track_consents(
                actor=request.user,
                tracks=Track.objects.filter(uuid__in=list(states)),
                states=states,
                source=AuditEvent.Source.ADMIN,
                request_meta=RequestMeta.from_request(request),
            )
        except ConsentError as error:
            self.message_user(request, error.message, messages.ERROR)
            return
        self.message_user(request, f"Withdrew {result.event_count} consent(s); each is in the artist's audit log.")


@admin.register(UploadDefault)
class UploadDefaultAdmin(ReadOnlyAdmin):
    list_display = ["artist", "purpose", "granted", "changed_at"]
    list_filter = ["purpose", "granted"]
    search_fields = ["artist__email"]
    list_select_related = ["artist", "purpose"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "artist",
        "seq",
        "kind",
        "purpose_slug",
        "track_title",
        "old_value",
        "new_value",
        "actor",
        "actor_kind",
        "source",
    ]
    list_filter = ["kind", "source", "actor_kind", "purpose_slug", "created_at"]
    search_fields = [
        "artist__email",
        "actor__email",
        "track_title",
        "=track_uuid",
        "=request_id",
        "=receipt_id",
        "=hash",
    ]
    list_select_related = ["artist", "actor"]
    date_hierarchy = "created_at"
    ordering = ["-id"]
    show_full_result_count = False
