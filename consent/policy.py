"""Policy versions: publishing with notice, acknowledgement, re-consent, lapse.

The writes of consent and audit rows this needs go through consent.services;
this module decides who is affected and when.
"""

from __future__ import annotations

import bisect
import difflib
import functools
import itertools
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F, Max, QuerySet, Window
from django.db.models.functions import RowNumber
from django.urls import reverse
from django.utils import timezone

from consent.models import AuditEvent, Consent, PolicyVersion
from platformkit.queueing import enqueue, task_named
from tracks.models import Track

FAN_OUT_BATCH = 5_000


class PolicyError(Exception):
    """A policy action that cannot be done, with a message for staff."""


def campaign_for(version: PolicyVersion) -> str:
    return f"policy-v{version.version}"


def publish_policy_version(*, version: PolicyVersion, effective_at: datetime | None = None) -> bool:
    """Publish a draft version and start the notice to every active user.

    Returns False if it was already published (publishing twice sends nothing
    twice). The fan-out runs in Celery after commit.
    """
    now = timezone.now()
    effective_at = effective_at or version.effective_at or now
    if version.purposes_changed.exists() and effective_at <= now:
        raise PolicyError(
            "A version that changes what a purpose means needs an effective date in the future, "
            "so artists have time to confirm their grants again."
        )
    with transaction.atomic():
        published = PolicyVersion.objects.filter(pk=version.pk, published_at__isnull=True).update(
            published_at=now, effective_at=effective_at
        )
        if not published:
            return False
        # By name: consent.tasks imports this module.
        transaction.on_commit(lambda: _start_fan_out(task_named("consent.tasks.fan_out_policy_notice"), version.pk))
    version.refresh_from_db()
    return True


def _start_fan_out(task, version_id: int) -> None:
    # If the broker does not take it, the sweep notices an unfinished fan-out
    # and starts it again.
    enqueue(task, version_id)


def insert_policy_notices(version: PolicyVersion, *, after_user_id: int, limit: int = FAN_OUT_BATCH) -> list[int]:
    """One INSERT ... SELECT writing the notices of the next `limit` users.

    Returns the new notifications' ids, in order. ON CONFLICT on the dedupe
    key makes a repeated batch (a redelivered task, the sweep's restart) write
    nothing.
    """
    from notifications.models import Notification

    table = Notification._meta.db_table
    user_table = get_user_model()._meta.db_table
    context = json.dumps(policy_notice_context(version))
    json_param = "%s::jsonb" if connection.vendor == "postgresql" else "%s"
    now = timezone.now()
    sql = f"""
        INSERT INTO {table}
            (recipient_id, to_email, kind, context, dedupe_key, campaign, status, attempts,
             next_attempt_at, last_error, created_at)
        SELECT u.id, u.email, %s, {json_param}, %s || CAST(u.id AS TEXT), %s, %s, 0, %s, '', %s
        FROM {user_table} u
        WHERE u.is_active AND u.id > %s AND u.date_joined <= %s
        ORDER BY u.id
        LIMIT %s
        ON CONFLICT (dedupe_key) DO NOTHING
        RETURNING id
    """  # noqa: S608 -- table names come from model metadata, values are parameters
    params: list[Any] = [
        Notification.Kind.POLICY_CHANGE,
        context,
        f"{campaign_for(version)}:",
        campaign_for(version),
        Notification.Status.PENDING,
        now,
        now,
        after_user_id,
        version.published_at,
        limit,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return sorted(row[0] for row in cursor.fetchall())


def batch_bounds(version: PolicyVersion, *, after_user_id: int, limit: int = FAN_OUT_BATCH) -> tuple[int | None, int]:
    """The last user id of the batch after `after_user_id`, and how many users it holds."""
    from accounts.models import User

    ids = list(
        User.objects.filter(is_active=True, id__gt=after_user_id, date_joined__lte=version.published_at)
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    return (ids[-1] if ids else None), len(ids)


def policy_notice_context(version: PolicyVersion) -> dict:
    return {
        "version": version.version,
        "summary": version.summary,
        "is_material": version.is_material,
        "effective_at": version.effective_at.isoformat() if version.effective_at else None,
        "purposes_changed": list(version.purposes_changed.order_by("ordering").values_list("name", flat=True)),
        "policy_path": version.get_absolute_url(),
        "reconfirm_path": reverse("policy:reconfirm", args=[version.version]),
    }


def notice_progress(version: PolicyVersion) -> dict[str, int]:
    from django.db.models import Count

    from notifications.models import Notification

    counts = dict(
        Notification.objects.filter(campaign=campaign_for(version))
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    total = sum(counts.values())
    return {
        "total": total,
        "sent": counts.get(Notification.Status.SENT, 0),
        "failed": counts.get(Notification.Status.FAILED, 0),
        "waiting": total - counts.get(Notification.Status.SENT, 0) - counts.get(Notification.Status.FAILED, 0),
    }


def fan_out_incomplete(version: PolicyVersion) -> bool:
    """Does some eligible user still lack this version's notice?"""
    from accounts.models import User
    from notifications.models import Notification

    have = Notification.objects.filter(campaign=campaign_for(version)).count()
    eligible = User.objects.filter(is_active=True, date_joined__lte=version.published_at).count()
    return have < eligible


# --- Acknowledgement ---------------------------------------------------------------------


def _ack_cache_key(user_id: int, version_id: int) -> str:
    return f"policy-ack:{user_id}:{version_id}"


def latest_material_version() -> PolicyVersion | None:
    # One indexed query on a table of a handful of rows. Not cached, so that a
    # publication shows its banner on the very next page everywhere.
    return PolicyVersion.objects.published().filter(is_material=True).order_by("-version").first()


def has_acknowledged(user, version: PolicyVersion) -> bool:
    key = _ack_cache_key(user.pk, version.pk)
    if cache.get(key):
        return True
    acknowledged = AuditEvent.objects.filter(
        artist=user, kind=AuditEvent.Kind.POLICY_ACKNOWLEDGED, policy_version=version
    ).exists()
    if acknowledged:
        cache.set(key, True, timeout=None)
    return acknowledged


def remember_acknowledgement(user, version: PolicyVersion) -> None:
    cache.set(_ack_cache_key(user.pk, version.pk), True, timeout=None)


def pending_acknowledgement(user) -> PolicyVersion | None:
    """The material version this signed-in user has not yet acknowledged, if any."""
    version = latest_material_version()
    if version is None or version.version == 1:
        return None
    if user.date_joined > version.published_at:
        return None  # they signed up under these terms
    return None if has_acknowledged(user, version) else version


# --- What changed for whom ---------------------------------------------------------------


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "same", "added" or "removed"
    text: str


@dataclass(frozen=True)
class PolicyChanges:
    """What changed from the terms `since` (older) to `to`, with every version in between."""

    since: PolicyVersion
    to: PolicyVersion
    versions: list[PolicyVersion]  # after `since`, up to and including `to`, oldest first
    lines: list[DiffLine]

    @property
    def changed_lines(self) -> list[DiffLine]:
        return [line for line in self.lines if line.kind != "same"]

    @property
    def purposes_changed(self) -> list[str]:
        names: dict[str, None] = {}
        for version in self.versions:
            names.update(dict.fromkeys(p.name for p in version.purposes_changed.all()))
        return list(names)


def text_diff(old: str, new: str) -> list[DiffLine]:
    """A readable line diff of two texts of the terms."""
    return list(_text_diff(old, new))


@functools.lru_cache(maxsize=32)
def _text_diff(old: str, new: str) -> tuple[DiffLine, ...]:
    # Cached: a policy notice to every user renders the same few diffs.
    lines = []
    for line in difflib.ndiff(old.splitlines(), new.splitlines()):
        marker, text = line[:2], line[2:]
        if marker == "? ":
            continue  # intra-line hints are noise for readers
        lines.append(DiffLine({"  ": "same", "+ ": "added", "- ": "removed"}[marker], text))
    return tuple(lines)


def last_accepted_version(user, *, before: PolicyVersion) -> PolicyVersion | None:
    """The newest version older than `before` that `user` accepted.

    Accepted means acknowledged (the banner's button, audited) or in force when
    they signed up. Without either, the version published just before.
    """
    older = PolicyVersion.objects.published().filter(version__lt=before.version)
    acknowledged = AuditEvent.objects.filter(
        artist_id=user.pk, kind=AuditEvent.Kind.POLICY_ACKNOWLEDGED, policy_version__in=older
    ).aggregate(newest=Max("policy_version__version"))["newest"]
    signed_up_under = older.filter(published_at__lte=user.date_joined).aggregate(newest=Max("version"))["newest"]
    newest = max((v for v in (acknowledged, signed_up_under) if v is not None), default=None)
    if newest is None:
        return older.order_by("-version").first()
    return older.get(version=newest)


def last_accepted_versions(users, *, before: PolicyVersion) -> dict[int, PolicyVersion | None]:
    """`last_accepted_version` for many users in two queries (a batch of policy notices)."""
    older = list(PolicyVersion.objects.published().filter(version__lt=before.version).order_by("version"))
    if not older:
        return {user.pk: None for user in users}
    by_number = {version.version: version for version in older}
    acknowledged = dict(
        AuditEvent.objects.filter(
            artist_id__in=[user.pk for user in users],
            kind=AuditEvent.Kind.POLICY_ACKNOWLEDGED,
            policy_version__in=older,
        )
        .values("artist_id")
        .annotate(newest=Max("policy_version__version"))
        .values_list("artist_id", "newest")
    )
    # The terms in force at each sign-up: the newest version published by then, found by bisection over the
    # versions in order of publication (each with the newest number published up to it), not by a scan per user.
    by_publication = sorted(older, key=lambda v: v.published_at)
    published_at = [v.published_at for v in by_publication]
    newest_by_then = list(itertools.accumulate((v.version for v in by_publication), max))
    accepted = {}
    for user in users:
        published_before = bisect.bisect_right(published_at, user.date_joined)
        signed_up_under = newest_by_then[published_before - 1] if published_before else None
        candidates = [v for v in (acknowledged.get(user.pk), signed_up_under) if v is not None]
        accepted[user.pk] = by_number[max(candidates)] if candidates else older[-1]
    return accepted


def changes_between(since: PolicyVersion, to: PolicyVersion) -> PolicyChanges:
    versions = list(
        PolicyVersion.objects.published()
        .filter(version__gt=since.version, version__lte=to.version)
        .prefetch_related("purposes_changed")
        .order_by("version")
    )
    return PolicyChanges(since=since, to=to, versions=versions, lines=text_diff(since.full_text, to.full_text))


def changes_path(version: PolicyVersion, since: PolicyVersion | None) -> str:
    """The page of `version` showing what changed since `since`."""
    path = version.get_absolute_url()
    return f"{path}?since={since.version}#changes" if since else path


# --- Re-consent and lapse ------------------------------------------------------------------


def grants_needing_reconfirmation(version: PolicyVersion) -> QuerySet[Consent]:
    """Grants of purposes whose meaning this version changes, made before it was published.

    A grant made (or confirmed again) after publication was given knowing the
    new meaning, so it stands.
    """
    return Consent.objects.filter(
        granted=True,
        purpose__in=version.purposes_changed.all(),
        changed_at__lt=version.published_at,
    )


def affected_tracks(user, version: PolicyVersion) -> QuerySet[Track]:
    return Track.objects.filter(owner=user, consents__in=grants_needing_reconfirmation(version)).distinct()


def affected_titles_by_owner(owner_ids, version: PolicyVersion, *, limit: int) -> dict[int, list[str]]:
    """The first `limit` titles of `affected_tracks` for each of many owners, in one query."""
    affected = Track.objects.filter(owner_id__in=owner_ids, consents__in=grants_needing_reconfirmation(version))
    rows = (
        Track.objects.filter(pk__in=affected.values("pk"))
        .annotate(rank=Window(RowNumber(), partition_by=F("owner_id"), order_by=F("title").asc()))
        .filter(rank__lte=limit)
        .order_by("owner_id", "title")
        .values_list("owner_id", "title")
    )
    titles: dict[int, list[str]] = {}
    for owner_id, title in rows:
        titles.setdefault(owner_id, []).append(title)
    return titles


def versions_due_to_lapse(now: datetime | None = None) -> QuerySet[PolicyVersion]:
    now = now or timezone.now()
    return PolicyVersion.objects.published().filter(effective_at__lte=now, purposes_changed__isnull=False).distinct()
