"""Policy notices are built a batch at a time: the batch lookups must say what the per-user ones say."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from consent import policy, services
from consent.models import PolicyVersion
from notifications import rendering
from notifications.models import Notification
from notifications.rendering import MessageBuilder, build_message

pytestmark = pytest.mark.django_db


def _grant(artist, tracks, slug):
    from tracks.models import Track

    services.change_consent(
        actor=artist,
        tracks=Track.objects.filter(pk__in=[t.pk for t in tracks]),
        changes={slug: True},
        source="web",
        confirmed_purposes=[slug],
    )


def _publish(purposes, django_capture_on_commit_callbacks, *, text: str, changes=()):
    """Publish the next version; its fan-out writes the notices (delivered to the test mailbox)."""
    previous = PolicyVersion.objects.order_by("-version").first()
    assert previous is not None
    version = PolicyVersion.objects.create(
        version=previous.version + 1,
        summary=f"Summary of {text}",
        full_text=text,
        effective_at=timezone.now() + timedelta(days=30),
        is_material=True,
    )
    version.purposes_changed.set([purposes[slug] for slug in changes])
    with django_capture_on_commit_callbacks(execute=True):
        policy.publish_policy_version(version=version)
    return version


@pytest.fixture
def three_versions_later(purposes, make_user, make_tracks, django_capture_on_commit_callbacks, client):
    """Artists who accepted different versions, some with tracks granted under the old meaning."""
    early, acknowledging, idle = make_user(), make_user(), make_user()
    _grant(early, make_tracks(25, owner=early), "generative_training")
    _grant(acknowledging, make_tracks(3, owner=acknowledging), "generative_training")
    second = _publish(purposes, django_capture_on_commit_callbacks, text="A.\nB.")
    client.force_login(acknowledging)
    client.post(reverse("policy:acknowledge", args=[second.version]))
    late = make_user()  # signed up under the second version
    for _ in range(6):
        make_user()
    third = _publish(purposes, django_capture_on_commit_callbacks, text="A.\nB2.\nC.", changes=("generative_training",))
    return third, [early, acknowledging, idle, late]


def test_batch_lookups_agree_with_the_per_user_ones(three_versions_later):
    version, users = three_versions_later

    accepted = policy.last_accepted_versions(users, before=version)
    titles = policy.affected_titles_by_owner([u.pk for u in users], version, limit=21)

    for user in users:
        assert accepted[user.pk] == policy.last_accepted_version(user, before=version)
        one_by_one = list(policy.affected_tracks(user, version).order_by("title").values_list("title", flat=True)[:21])
        assert titles.get(user.pk, []) == one_by_one
    assert len({accepted[u.pk].version for u in users}) == 2  # not everyone accepted the same terms
    assert len(titles[users[0].pk]) == 21


def test_a_batch_of_policy_notices_is_the_same_emails_in_a_constant_number_of_queries(three_versions_later):
    version, _users = three_versions_later
    notices = Notification.objects.filter(kind=Notification.Kind.POLICY_CHANGE, context__version=version.version)
    rows = list(notices.select_related("recipient").order_by("id"))
    assert len(rows) >= 10

    with CaptureQueriesContext(connection) as two:
        builder = MessageBuilder(rows[:2])
        [builder.outgoing(row) for row in rows[:2]]
    with CaptureQueriesContext(connection) as every:
        builder = MessageBuilder(rows)
        built = [builder.outgoing(row) for row in rows]

    assert len(every) == len(two)
    for row, outgoing in zip(rows, built, strict=True):
        rendering._rendered.clear()
        alone = build_message(row)  # the row on its own, as before batching
        assert outgoing.email.subject == alone.subject
        assert outgoing.email.body == alone.body
        assert outgoing.email.alternatives == alone.alternatives
