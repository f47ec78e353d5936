from django.contrib import admin
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.contenttypes.models import ContentType

from accounts import services
from accounts.models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "display_name", "is_active", "is_staff", "date_joined"]
    search_fields = ["email", "display_name"]
    list_filter = ["is_active", "is_staff", "is_superuser"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Profile", {"fields": ["display_name"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["email", "display_name", "password1", "password2"]}),
    ]

    # --- Deletion, through the one service ----------------------------------------------------
    # The delete view and the "delete selected" action both end here, so staff
    # get the same withdrawals, audit events, label notices and file removal as
    # an artist deleting their own account, with the staff member as the actor.

    def get_deleted_objects(self, objs, request):
        """What the confirmation page lists: the service's plan, not Django's cascade."""
        deleted: list[str | list[str]] = []
        protected: list[str] = []
        for user in objs:
            if user.pk == request.user.pk:
                protected.append(f"{user.email}: delete your own account from its settings page, not here.")
                continue
            deleted.append(f"Account {user.email}")
            deleted.append(services.deletion_plan(user))
        model_count = {User._meta.verbose_name_plural: len(objs) - len(protected)}
        perms_needed = set() if self.has_delete_permission(request) else {User._meta.verbose_name}
        return deleted, model_count, perms_needed, protected

    def delete_model(self, request, obj: User) -> None:
        services.delete_account(user=obj, actor=request.user, via=services.VIA_ADMIN, request=request)

    def delete_queryset(self, request, queryset) -> None:
        for user in queryset.order_by("pk"):
            services.delete_account(user=user, actor=request.user, via=services.VIA_ADMIN, request=request)

    def log_deletions(self, request, queryset):
        # The admin's own history must not keep the name or address of an
        # account erased on purpose: the entry names the account by its id.
        content_type = ContentType.objects.get_for_model(User)
        return LogEntry.objects.bulk_create(
            [
                LogEntry(
                    user_id=request.user.pk,
                    content_type=content_type,
                    object_id=str(user.pk),
                    object_repr=f"account #{user.pk}",
                    action_flag=DELETION,
                    change_message="Deleted through the account-deletion service.",
                )
                for user in queryset
            ]
        )
