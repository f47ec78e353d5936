import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from consent import policy, services
from consent.models import AuditEvent, Consent, PolicyVersion
from consent.selectors import verify_chains
from notifications.models import Notification

pytestmark = pytest.mark.django_db


@pytest.fixture
def draft(purposes):
    """A material draft version 2 that changes what generative training means."""

    def make(*, changes=("generative_training",), material=True, effective_in=timedelta(days=30)):
        previous = PolicyVersion.objects.order_by("-version").first()
        lines = previous.full_text.splitlines()
        version = PolicyVersion.objects.create(
            version=previous.version + 1,
            summary="Generative training now includes voice models.",
            # The new text drops the previous first line and adds one at the end.
            full_text="\n".join([*lines[1:], "Generative training also means training voice models."]),
            effective_at=timezone.now() + effective_in,
            is_material=material,
        )
        version.purposes_changed.set([purposes[slug] for slug in changes])
        return version

    return make


def grant(artist, tracks, slug):
    from tracks.models import Track

    return services.change_consent(
        actor=artist,
        tracks=Track.objects.filter(pk__in=[t.pk for t in tracks]),
        changes={slug: True},
        source="web",
        confirmed_purposes=[slug],
    )


def test_publishing_writes_one_notice_per_active_user_in_set_based_batches(
    draft, make_user, django_capture_on_commit_callbacks
):
    users = [make_user() for _ in range(30)]
    make_user(is_active=False)
    version = draft()

    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
        assert policy.publish_policy_version(version=version)

    notices = Notification.objects.filter(campaign=policy.campaign_for(version))
    assert notices.count() == len(users)
    assert set(notices.values_list("recipient_id", flat=True)) == {u.pk for u in users}
    inserts = [
        q for q in queries.captured_queries if re.match(r'\s*INSERT INTO "?notifications_notification\b', q["sql"])
    ]
    assert len(inserts) == 1, "one INSERT ... SELECT, not one INSERT per user"


def test_fan_out_query_count_does_not_grow_with_the_number_of_users(draft, make_user, settings, monkeypatch):
    from consent.tasks import fan_out_policy_notice
    from notifications import services as notification_services

    settings.NOTIFICATIONS_BATCH_SIZE = 10_000  # one delivery hand-off per fan-out, whatever the count
    handed_off = []
    # Count the fan-out's own queries, not those of the deliveries it starts.
    monkeypatch.setattr(notification_services, "enqueue_delivery", handed_off.append)

    def queries_for(user_count, version):
        for _ in range(user_count):
            make_user()
        PolicyVersion.objects.filter(pk=version.pk).update(published_at=timezone.now())
        with CaptureQueriesContext(connection) as queries:
            fan_out_policy_notice.run(version.pk)
        return len(queries.captured_queries)

    few = queries_for(5, draft(material=False, changes=()))
    many = queries_for(120, draft(material=False, changes=()))

    assert few == many
    assert [len(ids) for ids in handed_off] == [5, 125]


def test_a_fan_out_queued_under_the_tasks_old_name_still_writes_the_notices(draft, make_user, settings):
    """The task moved from notifications.tasks to consent.tasks; a message queued before the move keeps its name."""
    from platformkit.queueing import task_named

    settings.NOTIFICATIONS_BATCH_SIZE = 10_000
    users = [make_user() for _ in range(3)]
    version = draft(material=False, changes=())
    PolicyVersion.objects.filter(pk=version.pk).update(published_at=timezone.now())

    task_named("notifications.tasks.fan_out_policy_notice").run(version.pk)

    noticed = set(
        Notification.objects.filter(campaign=policy.campaign_for(version)).values_list("recipient_id", flat=True)
    )
    assert {u.pk for u in users} <= noticed


def test_publishing_twice_sends_nothing_twice(draft, artist, django_capture_on_commit_callbacks):
    version = draft()

    with django_capture_on_commit_callbacks(execute=True):
        assert policy.publish_policy_version(version=version) is True
        assert policy.publish_policy_version(version=version) is False

    assert Notification.objects.filter(recipient=artist, campaign=policy.campaign_for(version)).count() == 1


def test_a_meaning_change_needs_an_effective_date_in_the_future(draft):
    version = draft(effective_in=timedelta(days=-1))

    with pytest.raises(policy.PolicyError, match="effective date in the future"):
        policy.publish_policy_version(version=version)
    version.refresh_from_db()
    assert version.published_at is None


def test_the_notice_names_the_artists_affected_tracks_and_links_to_reconfirm(
    draft, artist, other_artist, make_track, smtp_server, django_capture_on_commit_callbacks
):
    tracks = [make_track(owner=artist, title=f"Song {n}") for n in range(3)]
    grant(artist, tracks[:2], "generative_training")
    version = draft()

    with django_capture_on_commit_callbacks(execute=True):
        policy.publish_policy_version(version=version)

    [message] = smtp_server.to(artist.email)
    text = message.get_body(("plain",)).get_content()
    assert message["Subject"].startswith("Important: our terms change on")
    assert "Song 0" in text and "Song 1" in text and "Song 2" not in text
    assert f"/policy/{version.version}/reconfirm/" in text
    [other] = smtp_server.to(other_artist.email)
    assert "nothing of yours changes" in other.get_body(("plain",)).get_content()


def test_the_banner_shows_until_acknowledged_and_the_acknowledgement_is_audited(
    draft, artist, artist_client, django_capture_on_commit_callbacks
):
    version = draft()
    with django_capture_on_commit_callbacks(execute=True):
        policy.publish_policy_version(version=version)

    page = artist_client.get(reverse("dashboard"))
    assert f"Our terms have changed (version {version.version})" in page.text

    response = artist_client.post(
        reverse("policy:acknowledge", args=[version.version]), {"next": reverse("tracks:list")}
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("tracks:list")
    event = AuditEvent.objects.get(artist=artist, kind=AuditEvent.Kind.POLICY_ACKNOWLEDGED)
    assert event.policy_version == version
    assert event.source == AuditEvent.Source.POLICY_ACK
    assert "Our terms have changed" not in artist_client.get(reverse("dashboard")).text
    # Acknowledging again records nothing more.
    artist_client.post(reverse("policy:acknowledge", args=[version.version]))
    assert AuditEvent.objects.filter(artist=artist, kind=AuditEvent.Kind.POLICY_ACKNOWLEDGED).count() == 1
    assert verify_chains().ok


def test_acknowledge_ignores_an_off_site_next_url(draft, artist_client, django_capture_on_commit_callbacks):
    version = draft()
    with django_capture_on_commit_callbacks(execute=True):
        policy.publish_policy_version(version=version)

    response = artist_client.post(
        reverse("policy:acknowledge", args=[version.version]), {"next": "https://evil.example/"}
    )

    assert response["Location"] == reverse("dashboard")


def test_users_who_joined_after_publication_see_no_banner(draft, make_user, client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        policy.publish_policy_version(version=draft())
    newcomer = make_user()
    client.force_login(newcomer)

    assert "Our terms have changed" not in client.get(reverse("dashboard")).text


def test_history_page_is_public_and_shows_what_changed(draft, client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        policy.publish_policy_version(version=draft())

    page = client.get(reverse("policy:history"))

    assert page.status_code == 200
    first_line = PolicyVersion.objects.get(version=1).full_text.splitlines()[0]
    added = "Generative training also means training voice models."
    assert f'<li class="added"><span class="visually-hidden">Added: </span>{added}</li>' in page.text
    assert f'<li class="removed"><span class="visually-hidden">Removed: </span>{escape(first_line)}</li>' in page.text
    assert "The first version." in page.text


def test_unconfirmed_grants_lapse_at_the_effective_date_and_confirmed_ones_stay(
    draft, artist, other_artist, make_track, artist_client, django_capture_on_commit_callbacks
):
    from consent.tasks import lapse_unconfirmed_grants

    mine = [make_track(owner=artist, title=f"Mine {n}") for n in range(2)]
    theirs = make_track(owner=other_artist, title="Theirs")
    grant(artist, mine, "generative_training")
    grant(artist, mine, "recommendation")
    grant(other_artist, [theirs], "generative_training")
    version = draft()
    with django_capture_on_commit_callbacks(execute=True):
        policy.publish_policy_version(version=version)

    page = artist_client.get(reverse("policy:reconfirm", args=[version.version]))
    assert "Mine 0" in page.text and "Theirs" not in page.text
    artist_client.post(reverse("policy:reconfirm", args=[version.version]))
    assert AuditEvent.objects.filter(artist=artist, kind=AuditEvent.Kind.CONSENT_RECONFIRMED).count() == 2

    # Before the effective date nothing lapses.
    assert lapse_unconfirmed_grants() == 0
    PolicyVersion.objects.filter(pk=version.pk).update(effective_at=timezone.now() - timedelta(seconds=1))
    assert lapse_unconfirmed_grants() == 1
    assert lapse_unconfirmed_grants() == 0

    assert Consent.objects.get(track=theirs, purpose__slug="generative_training").granted is False
    assert all(Consent.objects.get(track=t, purpose__slug="generative_training").granted for t in mine)
    assert all(Consent.objects.get(track=t, purpose__slug="recommendation").granted for t in mine)
    lapse = AuditEvent.objects.get(artist=other_artist, source=AuditEvent.Source.POLICY_LAPSE)
    assert lapse.actor_id is None and lapse.actor_kind == AuditEvent.ActorKind.SYSTEM
    assert (lapse.old_value, lapse.new_value) == ("granted", "not_granted")
    assert verify_chains().ok


def test_reconfirm_pages_need_sign_in_and_a_published_version(artist_client, draft):
    from django.test import Client

    unpublished = draft()

    assert Client().get(reverse("policy:reconfirm", args=[1])).status_code == 302
    assert artist_client.get(reverse("policy:reconfirm", args=[unpublished.version])).status_code == 404
    assert artist_client.post(reverse("policy:acknowledge", args=[unpublished.version])).status_code == 404
    assert artist_client.get(reverse("policy:acknowledge", args=[1])).status_code == 405


@pytest.fixture
def publish(purposes, django_capture_on_commit_callbacks):
    """Publish the next version with this text (and notify everyone, as publishing does)."""

    def publish_(full_text: str, summary: str, *, changes=()):
        previous = PolicyVersion.objects.order_by("-version").first()
        assert previous is not None, "migrations publish the first version"
        version = PolicyVersion.objects.create(
            version=previous.version + 1,
            summary=summary,
            full_text=full_text,
            effective_at=timezone.now() + timedelta(days=30),
            is_material=True,
        )
        version.purposes_changed.set([purposes[slug] for slug in changes])
        with django_capture_on_commit_callbacks(execute=True):
            policy.publish_policy_version(version=version)
        return version

    return publish_


TERMS_V2 = "Clause A.\nClause B.\nClause C."
TERMS_V3 = "Clause A.\nClause B, now covering voice models.\nClause C.\nClause D."


def test_the_terms_page_shows_what_changed_since_the_version_each_artist_last_accepted(
    publish, artist, other_artist, artist_client, client
):
    joined = PolicyVersion.objects.in_force()  # what both artists signed up under
    second = publish(TERMS_V2, "Version two summary.")
    artist_client.post(reverse("policy:acknowledge", args=[second.version]))
    third = publish(TERMS_V3, "Version three summary.")

    mine = artist_client.get(reverse("consent:policy", args=[third.version])).text
    assert f"What changed from version {second.version} to version {third.version}" in mine
    assert f"Version {second.version} is the last one you accepted" in mine
    assert "Version three summary." in mine and "Version two summary." not in mine
    assert '<span class="visually-hidden">Removed: </span>Clause B.</li>' in mine
    assert '<span class="visually-hidden">Added: </span>Clause B, now covering voice models.</li>' in mine
    assert '<span class="visually-hidden">Added: </span>Clause D.</li>' in mine

    client.force_login(other_artist)  # never acknowledged the second version
    theirs = client.get(reverse("consent:policy", args=[third.version])).text
    assert f"What changed from version {joined.version} to version {third.version}" in theirs
    assert "Version two summary." in theirs and "Version three summary." in theirs
    first_line = joined.full_text.splitlines()[0]
    assert f'<span class="visually-hidden">Removed: </span>{escape(first_line)}</li>' in theirs


def test_the_policy_email_shows_the_difference_and_the_affected_tracks_and_links_to_them(
    publish, artist, make_track, artist_client, smtp_server
):
    from django.test import Client

    track = make_track(owner=artist, title="Old Song")
    grant(artist, [track], "generative_training")
    second = publish(TERMS_V2, "Version two summary.")
    artist_client.post(reverse("policy:acknowledge", args=[second.version]))
    smtp_server.messages.clear()

    third = publish(TERMS_V3, "Version three summary.", changes=("generative_training",))

    [message] = smtp_server.to(artist.email)
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    expected = f"Since version {second.version}, the last version you accepted:\n  - version {third.version}: "
    assert expected + "Version three summary." in text
    assert "- Removed: Clause B.\n" in text
    assert "+ Added:   Clause B, now covering voice models.\n" in text
    assert "+ Added:   Clause D.\n" in text
    assert "  - Old Song\n" in text
    link = f"/consent/policy/{third.version}/?since={second.version}#changes"
    assert link in text
    assert link.replace("&", "&amp;") in message.get_body(("html",)).get_content()

    # The link shows the same difference to whoever opens it, signed in or not.
    page = Client().get(link.split("#")[0]).text
    assert f"What changed from version {second.version} to version {third.version}" in page
    assert '<span class="visually-hidden">Added: </span>Clause D.</li>' in page
    assert "Old Song" not in page  # the tracks are the artist's own business
    signed_in = artist_client.get(link.split("#")[0]).text
    assert "Your tracks this affects" in signed_in and "Old Song" in signed_in
    assert reverse("policy:reconfirm", args=[third.version]) in signed_in


def test_an_unknown_or_later_since_falls_back_to_the_version_before(publish, client):
    second = publish(TERMS_V2, "Version two summary.")
    third = publish(TERMS_V3, "Version three summary.")

    for since in ("99", str(third.version), "x"):
        page = client.get(reverse("consent:policy", args=[third.version]), {"since": since})
        assert page.status_code == 200
        assert f"What changed from version {second.version} to version {third.version}" in page.text
