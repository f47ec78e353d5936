from __future__ import annotations

from collections import defaultdict

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import OuterRef, Subquery
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from consent import policy, services
from consent.models import AuditErasure, AuditEvent, Consent, PolicyVersion, Purpose, UploadDefault
from consent.services import ConsentError
from platformkit.admin_base import ReadOnlyAdmin
from platformkit.request_meta import RequestMeta
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
    list_display = ["version", "state", "published_at", "effective_at", "is_material", "notice_progress"]
    filter_horizontal = ["purposes_changed"]
    actions = ["publish"]
    readonly_fields = ["published_at", "notice_progress"]
    fieldsets = [
        (None, {"fields": ["version", "summary", "full_text"]}),
        ("Effect", {"fields": ["effective_at", "is_material", "purposes_changed"]}),
        ("Publication", {"fields": ["published_at", "notice_progress"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        # Published terms are what artists agreed to: they never change afterwards.
        if obj is not None and obj.published_at is not None:
            return [field.name for field in PolicyVersion._meta.fields] + ["purposes_changed", "notice_progress"]
        return self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("state"))
    def state(self, obj):
        return gettext("published") if obj.published_at else gettext("draft")

    @admin.display(description=_("notice (sent / failed / total)"))
    def notice_progress(self, obj):
        if obj is None or obj.published_at is None:
            return gettext("not published")
        progress = policy.notice_progress(obj)
        return f"{progress['sent']} / {progress['failed']} / {progress['total']}"

    @admin.action(description=_("Publish the selected drafts and notify every active user"))
    def publish(self, request, queryset):
        for version in queryset.order_by("version"):
            try:
                published = policy.publish_policy_version(version=version)
            except policy.PolicyError as error:
                self.message_user(
                    request,
                    gettext("Version %(version)s was not published: %(error)s")
                    % {"version": version.version, "error": error},
                    messages.ERROR,
                )
                continue
            if published:
                self.message_user(
                    request,
                    gettext(
                        "Version %(version)s is published; the notice is going out to every active user. "
                        "Progress shows in the list."
                    )
                    % {"version": version.version},
                    messages.SUCCESS,
                )
            else:
                self.message_user(
                    request,
                    gettext("Version %(version)s was already published.") % {"version": version.version},
                    messages.WARNING,
                )


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

    @admin.display(description=_("Artist"))
    def owner(self, obj):
        return obj.track.owner

    def has_withdraw_permission(self, request):
        return request.user.is_active and request.user.is_staff and self.has_view_permission(request)

    @admin.action(description=_("Withdraw selected consents"), permissions=["withdraw"])
    def withdraw_selected(self, request, queryset):
        # Staff may only withdraw: the service refuses any grant by staff anyway.
        states: dict = defaultdict(dict)
        for track_uuid, slug in queryset.filter(granted=True).values_list("track__uuid", "purpose__slug"):
            states[track_uuid][slug] = False
        if not states:
            self.message_user(
                request, gettext("None of the selected consents is granted; nothing to withdraw."), messages.INFO
            )
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
        self.message_user(
            request,
            ngettext(
                "Withdrew %(count)d consent; it is in the artist's audit log.",
                "Withdrew %(count)d consents; each is in the artist's audit log.",
                result.event_count,
            )
            % {"count": result.event_count},
        )


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
        "artist_account",
        "seq",
        "kind",
        "purpose_slug",
        "track_title",
        "old_value",
        "new_value",
        "actor_account",
        "actor_kind",
        "source",
    ]
    list_filter = ["kind", "source", "actor_kind", "purpose_slug", "created_at"]
    search_fields = [
        "artist__email",
        "actor__email",
        "subject_data__track_title",
        "=track_uuid",
        "=request_id",
        "=receipt_id",
        "=hash",
    ]
    # Not select_related("artist"): an INNER JOIN would hide the events of
    # deleted accounts, whose chains stay in the log.
    list_select_related = ["subject_data"]
    date_hierarchy = "created_at"
    ordering = ["-id"]
    show_full_result_count = False

    def get_queryset(self, request):
        emails = get_user_model().objects.values("email")
        return (
            super()
            .get_queryset(request)
            .annotate(
                artist_email=Subquery(emails.filter(pk=OuterRef("artist_id"))[:1]),
                actor_email=Subquery(emails.filter(pk=OuterRef("actor_id"))[:1]),
            )
        )

    @admin.display(description=_("artist"), ordering="artist_id")
    def artist_account(self, obj) -> str:
        return obj.artist_email or f"deleted account #{obj.artist_id}"

    @admin.display(description=_("actor"))
    def actor_account(self, obj) -> str:
        if obj.actor_id is None:
            return "—"
        return obj.actor_email or f"deleted account #{obj.actor_id}"


@admin.register(AuditErasure)
class AuditErasureAdmin(ReadOnlyAdmin):
    """Which personal data was erased from the log, when and why (the verifier reads these too)."""

    list_display = ["erased_at", "user_id", "scope", "reason", "actor_rows", "subject_rows"]
    list_filter = ["scope", "erased_at"]
    search_fields = ["=user_id"]
