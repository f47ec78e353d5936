"""Admin for labels: kept here so the label feature lives in one app.

Memberships, invitations, delegations, proposals and bulk changes are
read-only: their writes are services that invite, audit and email (a manager
added here would gain power over every artist on the roster without an
invitation, an audit event or a word to those artists). A new manager joins
through the owner's invitation, a new artist through their own acceptance.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, Q

from labels.models import (
    ArtistInvitation,
    BulkChange,
    ConsentProposal,
    Delegation,
    Label,
    LabelInvitation,
    LabelMembership,
)
from platformkit.admin_base import ReadOnlyAdmin, ReadOnlyTabularInline


class MembershipInline(ReadOnlyTabularInline):
    model = LabelMembership
    extra = 0
    fields = ("user", "role", "created_at")
    readonly_fields = fields


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "member_count", "artist_count", "created_at"]
    search_fields = ["name", "slug"]
    inlines = [MembershipInline]

    def has_delete_permission(self, request, obj=None):
        # Deleting a label would end every delegation to it with no audit
        # event and no notice to the artists.
        return False

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                _members=Count("memberships", distinct=True),
                _artists=Count(
                    "delegations",
                    filter=Q(delegations__status=Delegation.Status.ACTIVE, delegations__ended_at__isnull=True),
                    distinct=True,
                ),
            )
        )

    @admin.display(description="members", ordering="_members")
    def member_count(self, obj):
        return obj._members

    @admin.display(description="artists", ordering="_artists")
    def artist_count(self, obj):
        return obj._artists


@admin.register(LabelMembership)
class LabelMembershipAdmin(ReadOnlyAdmin):
    list_display = ["user", "label", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "label__name"]


@admin.register(LabelInvitation)
class LabelInvitationAdmin(ReadOnlyAdmin):
    list_display = ["email", "label", "role", "created_at", "accepted_at"]
    exclude = ["token"]


@admin.register(ArtistInvitation)
class ArtistInvitationAdmin(ReadOnlyAdmin):
    list_display = ["email", "label", "created_at", "accepted_at", "declined_at"]
    search_fields = ["email", "label__name"]
    exclude = ["token"]


@admin.register(Delegation)
class DelegationAdmin(ReadOnlyAdmin):
    list_display = ["artist", "label", "status", "scopes", "created_at", "accepted_at", "ended_at"]
    list_filter = ["status"]
    search_fields = ["artist__email", "label__name"]


@admin.register(ConsentProposal)
class ConsentProposalAdmin(ReadOnlyAdmin):
    list_display = ["label", "artist", "purpose", "status", "track_count", "created_at", "decided_at"]
    list_filter = ["status", "purpose"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("label", "artist", "purpose").annotate(_n=Count("tracks"))

    @admin.display(description="tracks", ordering="_n")
    def track_count(self, obj):
        return obj._n


@admin.register(BulkChange)
class BulkChangeAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "label",
        "artist",
        "kind",
        "status",
        "created_by",
        "will_change",
        "already",
        "refused",
        "applied",
        "artists_notified",
        "created_at",
        "finished_at",
    ]
    list_filter = ["kind", "status"]
    search_fields = ["label__name", "artist__email", "created_by__email"]
    list_select_related = ["label", "artist", "created_by"]
    exclude = ["changes", "selection"]
