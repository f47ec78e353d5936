"""Staff side of downstream systems: register clients (token shown once), revoke, see lag."""

from __future__ import annotations

import datetime

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from downstream import selectors, services
from downstream.models import ApiClient, Manifest, UsageRecord, WebhookDelivery
from platformkit.admin_base import ReadOnlyAdmin


class ApiClientForm(forms.ModelForm):
    class Meta:
        model = ApiClient
        fields = ["name", "contact", "purposes", "can_write_manifests", "can_write_usage", "rate_limit", "webhook_url"]

    def clean_webhook_url(self):
        url = (self.cleaned_data.get("webhook_url") or "").strip()
        if url and not url.lower().startswith("https://"):
            raise forms.ValidationError(gettext("Webhooks are delivered over HTTPS only: use an https:// URL."))
        return url


def _when(moment: datetime.datetime) -> str:
    # In the staff member's language and time zone, as every other time in the admin.
    return formats.date_format(timezone.localtime(moment), "SHORT_DATETIME_FORMAT")


def _token_page(request, client: ApiClient, token: str = "", webhook_secret: str = "") -> TemplateResponse:
    """The one time the token (and webhook secret) are shown. Not cached, never stored in a message."""
    response = TemplateResponse(
        request,
        "admin/downstream/token_issued.html",
        {
            **admin.site.each_context(request),
            "title": f"Credentials for {client.name}",
            "client": client,
            "token": token,
            "webhook_secret": webhook_secret,
            "docs_url": reverse("api-v1:openapi-view"),
            "change_url": reverse("admin:downstream_apiclient_change", args=[client.pk]),
        },
    )
    response["Cache-Control"] = "no-store"
    return response


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    form = ApiClientForm
    list_display = ["name", "scope", "can_write_manifests", "can_write_usage", "token_hint", "active", "lag_summary"]
    list_filter = ["revoked_at", "purposes"]
    search_fields = ["name", "contact"]
    filter_horizontal = ["purposes"]
    readonly_fields = ["token_hint", "created_at", "revoked_at", "lag_table", "docs"]
    actions = ["revoke", "issue_new_token", "new_webhook_secret"]
    change_list_template = "admin/downstream/apiclient/change_list.html"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("purposes")

    @admin.display(description=_("purposes"))
    def scope(self, obj: ApiClient) -> str:
        return ", ".join(p.slug for p in obj.purposes.all()) or "—"

    @admin.display(description=_("active"), boolean=True)
    def active(self, obj: ApiClient) -> bool:
        return obj.revoked_at is None

    @admin.display(description=_("lag (changes not acknowledged)"))
    def lag_summary(self, obj: ApiClient) -> str:
        parts = []
        for lag in selectors.client_lag(obj):
            behind = f"{lag.changes_behind}+" if lag.changes_behind >= selectors.LAG_COUNT_CAP else lag.changes_behind
            parts.append(f"{lag.purpose}: {behind}")
        return "; ".join(parts) or "—"

    @admin.display(description=_("lag by purpose"))
    def lag_table(self, obj: ApiClient):
        if obj.pk is None:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    lag.purpose,
                    _when(lag.acknowledged_at) if lag.acknowledged_at else gettext("never"),
                    lag.changes_behind,
                    _when(lag.oldest_unacknowledged_withdrawal)
                    if lag.oldest_unacknowledged_withdrawal
                    else gettext("none"),
                )
                for lag in selectors.client_lag(obj)
            ),
        )
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>",
            gettext("purpose"),
            gettext("last acknowledged"),
            gettext("changes behind"),
            gettext("oldest unacknowledged withdrawal"),
            rows,
        )

    @admin.display(description=_("API documentation"))
    def docs(self, obj: ApiClient | None = None):
        link_text = gettext("Interactive API documentation")
        return format_html('<a href="{}">{}</a>', reverse("api-v1:openapi-view"), link_text)

    def save_model(self, request, obj: ApiClient, form, change: bool) -> None:
        url = form.cleaned_data.get("webhook_url", "")
        if not change:
            obj.webhook_url = ""
            request._issued_token = services.new_token()
            obj.token_hash = services.hash_token(request._issued_token)
            obj.token_hint = request._issued_token[:8]
        else:
            obj.webhook_url = ApiClient.objects.get(pk=obj.pk).webhook_url
        super().save_model(request, obj, form, change)
        request._webhook_form_url = url

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        # After the purposes are saved: the webhook starts at the head of their feed.
        client = form.instance
        request._issued_secret = services.set_webhook(client=client, url=getattr(request, "_webhook_form_url", ""))

    def response_add(self, request, obj, post_url_continue=None):
        return _token_page(
            request, obj, token=request._issued_token, webhook_secret=getattr(request, "_issued_secret", "")
        )

    def response_change(self, request, obj):
        secret = getattr(request, "_issued_secret", "")
        if secret:
            return _token_page(request, obj, webhook_secret=secret)
        return super().response_change(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        # Manifests and the ledger name the client: revoke it instead.
        return False

    @admin.action(description=_("Revoke the selected clients (their tokens stop working at once)"))
    def revoke(self, request, queryset):
        for client in queryset.filter(revoked_at__isnull=True):
            services.revoke_client(client=client)
        self.message_user(request, gettext("Revoked."), messages.SUCCESS)

    @admin.action(description=_("Issue a new token (the old one stops working at once)"))
    def issue_new_token(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, gettext("Select exactly one client."), messages.ERROR)
            return None
        client = queryset.get()
        if client.revoked_at is not None:
            self.message_user(request, gettext("A revoked client gets no new token."), messages.ERROR)
            return None
        return _token_page(request, client, token=services.issue_token(client=client))

    @admin.action(description=_("Issue a new webhook signing secret"))
    def new_webhook_secret(self, request, queryset):
        if queryset.count() != 1 or not queryset.get().webhook_url:
            self.message_user(request, gettext("Select exactly one client that has a webhook."), messages.ERROR)
            return None
        client = queryset.get()
        return _token_page(request, client, webhook_secret=services.rotate_webhook_secret(client=client))


@admin.register(Manifest)
class ManifestAdmin(ReadOnlyAdmin):
    list_display = ["name", "id", "client", "purpose", "track_count", "created_at"]
    list_filter = ["purpose", "client"]
    search_fields = ["id", "name"]


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdmin):
    list_display = ["recorded_at", "client", "purpose", "track_uuid", "description"]
    list_filter = ["purpose", "client"]
    date_hierarchy = "recorded_at"


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "client", "event_id", "purpose", "status", "attempts", "last_status", "sent_at"]
    list_filter = ["status", "client"]
    actions = ["resend"]

    @admin.action(description=_("Send the selected failed deliveries again"))
    def resend(self, request, queryset):
        from downstream.webhooks import enqueue

        ids = list(queryset.filter(status=WebhookDelivery.Status.FAILED).values_list("id", flat=True))
        WebhookDelivery.objects.filter(id__in=ids, status=WebhookDelivery.Status.FAILED).update(
            status=WebhookDelivery.Status.PENDING, next_attempt_at=timezone.now(), attempts=0, last_error=""
        )
        enqueue(ids)
        self.message_user(
            request,
            ngettext("%(count)d delivery queued again.", "%(count)d deliveries queued again.", len(ids))
            % {"count": len(ids)},
        )
