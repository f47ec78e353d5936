"""factory-boy factories for the rows tests build directly.

Conftest fixtures (`make_user`, `make_track`, `make_tracks`) wrap these, so a
test asks for a fixture and the defaults live in one place.
"""

from __future__ import annotations

import hashlib

import factory
from allauth.account.models import EmailAddress
from factory.django import DjangoModelFactory

TEST_PASSWORD = "correct horse battery staple 42"


class UserFactory(DjangoModelFactory):
    """A user who can sign in: a usable password and a verified primary address."""

    class Meta:
        model = "accounts.User"
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"artist{n}@example.test")
    display_name = factory.Sequence(lambda n: f"Artist {n}")

    @classmethod
    def _create(cls, model_class, *args, password: str = TEST_PASSWORD, **kwargs):
        return model_class.objects.create_user(*args, password=password, **kwargs)

    @factory.post_generation
    def verified(user, create: bool, extracted: bool | None, **kwargs) -> None:
        if create:
            EmailAddress.objects.create(
                user=user, email=user.email, verified=True if extracted is None else extracted, primary=True
            )


class TrackFactory(DjangoModelFactory):
    """A ready Track row with a distinct hash and no stored file: for tests that are not about uploads."""

    class Meta:
        model = "tracks.Track"

    owner = factory.SubFactory(UserFactory)
    title = factory.Sequence(lambda n: f"Track {n}")
    audio_file = factory.Sequence(lambda n: f"audio/test-{n}.flac")
    sha256 = factory.Sequence(lambda n: hashlib.sha256(f"track-{n}".encode()).hexdigest())
    status = "ready"


class DelegationFactory(DjangoModelFactory):
    """An active delegation written directly, without the invitation flow (labels' `delegate` does that)."""

    class Meta:
        model = "labels.Delegation"

    artist = factory.SubFactory(UserFactory)
    label = None
    status = "active"
    scopes = factory.LazyFunction(dict)
