"""The purpose "AI training by other companies" and the policy version that announces it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from consent.models import Consent, PolicyVersion, Purpose
from consent.policy import campaign_for
from notifications.models import Notification

pytestmark = pytest.mark.django_db


def test_the_purpose_is_opt_in_needs_its_own_confirmation_and_is_off_everywhere(make_track, artist):
    purpose = Purpose.objects.get(slug=Purpose.THIRD_PARTY_AI_TRAINING)
    generative = Purpose.objects.get(slug=Purpose.GENERATIVE_TRAINING)
    assert purpose.name == "AI training by other companies"
    assert purpose.requires_confirmation is True and generative.requires_confirmation is True
    assert purpose.ordering > generative.ordering
    make_track(owner=artist)
    assert not Consent.objects.filter(purpose=purpose).exists()


def test_a_grant_without_its_confirmation_is_refused(make_track, artist):
    from consent import services
    from tracks.models import Track

    track = make_track(owner=artist)
    with pytest.raises(services.ConfirmationRequired):
        services.change_consent(
            actor=artist,
            tracks=Track.objects.filter(pk=track.pk),
            changes={Purpose.THIRD_PARTY_AI_TRAINING: True},
            source="web",
        )
    assert not Consent.objects.exists()


def test_the_announcing_version_is_published_without_a_staff_action():
    version = PolicyVersion.objects.published().order_by("-version").first()
    assert "AI training by other companies" in version.summary
    assert "AI training by other companies" in version.full_text
    assert version.published_at is not None and not version.is_material
    assert not version.purposes_changed.exists()  # a new use, not a new meaning of an old one
    assert PolicyVersion.objects.in_force() == version


def test_the_sweep_sends_the_announcement_to_everyone_who_signed_up_before_it(make_user, settings):
    from notifications.tasks import sweep_notifications

    settings.NOTIFICATIONS_SWEEP_GRACE_SECONDS = 0
    version = PolicyVersion.objects.published().order_by("-version").first()
    earlier = [make_user(), make_user()]
    type(earlier[0]).objects.filter(pk__in=[u.pk for u in earlier]).update(
        date_joined=version.published_at - timedelta(days=30)
    )
    later = make_user()
    assert later.date_joined > version.published_at

    sweep_notifications()  # what beat runs every minute; the fan-out runs in-process here

    notices = Notification.objects.filter(campaign=campaign_for(version))
    assert set(notices.values_list("recipient_id", flat=True)) == {u.pk for u in earlier}
    sweep_notifications()
    assert notices.count() == 2
