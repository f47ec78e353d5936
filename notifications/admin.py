from django.contrib import admin, messages
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from notifications.models import Notification
from notifications.services import enqueue_delivery
from platformkit.admin_filters import LabelledValuesFilter


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "to_email", "status", "attempts", "sent_at", "short_error"]
    search_fields = ["to_email", "dedupe_key", "campaign"]
    list_filter = ["status", "kind", ("campaign", LabelledValuesFilter)]
    date_hierarchy = "created_at"
    actions = ["resend"]
    readonly_fields = [*(field.name for field in Notification._meta.fields), "message_id"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        # The outbox is the record that a notice went out; keep it.
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("last error"))
    def short_error(self, obj):
        return obj.last_error[:80]

    @admin.action(description=_("Send the selected failed notifications again"))
    def resend(self, request, queryset):
        ids = list(queryset.filter(status=Notification.Status.FAILED).values_list("id", flat=True))
        Notification.objects.filter(id__in=ids, status=Notification.Status.FAILED).update(
            status=Notification.Status.PENDING, next_attempt_at=timezone.now(), attempts=0, last_error=""
        )
        enqueue_delivery(ids)
        self.message_user(
            request,
            ngettext("%(count)d notification queued again.", "%(count)d notifications queued again.", len(ids))
            % {"count": len(ids)},
            messages.SUCCESS,
        )
