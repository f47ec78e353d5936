import pytest
from django.core.management import CommandError, call_command

from accounts.models import User

pytestmark = pytest.mark.django_db


def test_seed_dev_creates_verified_admin_and_artist_and_is_repeatable(settings):
    settings.DEBUG = True

    call_command("seed_dev")
    call_command("seed_dev")

    admin = User.objects.get(email="admin@localhost")
    artist = User.objects.get(email="artist@localhost")
    assert admin.is_staff and admin.is_superuser
    assert not artist.is_staff
    assert artist.check_password("artist-dev-password")
    assert artist.emailaddress_set.get().verified


def test_seed_dev_refuses_outside_debug(settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="refuses to run with DEBUG off"):
        call_command("seed_dev")
    assert not User.objects.exists()
