"""Fixtures shared by every app's tests.

Tests that need a real service (PostgreSQL, Redis, a browser, SMTP) ask for it
through a fixture here. Locally a missing service skips the test; with
PORTAL_REQUIRE_SERVICES=1 (set by .ci/run) it fails instead, so CI can never
pass by skipping.
"""

from __future__ import annotations

import itertools
import os

import pytest
from allauth.account.models import EmailAddress

from creatorportal.celery import app as celery_app

REQUIRE_SERVICES = os.environ.get("PORTAL_REQUIRE_SERVICES", "") in {"1", "true", "yes"}

_sequence = itertools.count(1)


def service_missing(reason: str) -> None:
    """Skip locally, fail in CI, when a service a test is about is not there."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    """Each test writes media into its own folder, so stray files can be checked."""
    media = tmp_path / "media"
    media.mkdir()
    settings.MEDIA_ROOT = media
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(media)}},
    }
    return media


@pytest.fixture(autouse=True)
def _eager_celery_by_default(request):
    """Unit tests run tasks in-process; tests marked real_worker use a real worker."""
    if request.node.get_closest_marker("real_worker"):
        yield
        return
    previous = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous


@pytest.fixture(autouse=True)
def _clear_cache():
    # allauth's rate limits live in the cache; one test's failures must not
    # throttle the next test.
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def password() -> str:
    return "correct horse battery staple 42"


@pytest.fixture
def make_user(db, password):
    """Create a user whose email is verified (so allauth lets them sign in)."""
    from accounts.models import User

    def make(*, email: str | None = None, display_name: str | None = None, verified: bool = True, **extra) -> User:
        n = next(_sequence)
        email = email or f"artist{n}@example.test"
        user = User.objects.create_user(
            email=email, password=password, display_name=display_name or f"Artist {n}", **extra
        )
        EmailAddress.objects.create(user=user, email=email, verified=verified, primary=True)
        return user

    return make


@pytest.fixture
def artist(make_user):
    return make_user(display_name="Ada Artist")


@pytest.fixture
def other_artist(make_user):
    return make_user(display_name="Otto Other")


@pytest.fixture
def staff_user(make_user):
    return make_user(display_name="Sam Staff", is_staff=True, is_superuser=True)


@pytest.fixture
def artist_client(client, artist):
    client.force_login(artist)
    return client
