import re

import pytest
from allauth.account.models import EmailAddress
from django.urls import reverse

from accounts.models import User

pytestmark = pytest.mark.django_db

CONFIRM_LINK = re.compile(r"https?://[^\s]+/accounts/confirm-email/[^\s]+/")


@pytest.fixture
def sign_up(client, password, django_capture_on_commit_callbacks):
    """Post the sign-up form; emails queued in the outbox are delivered on commit."""

    def post(email="new.artist@example.test", display_name="New Artist"):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                reverse("account_signup"),
                {"email": email, "display_name": display_name, "password1": password, "password2": password},
            )

    return post


def test_signup_creates_unverified_user_and_sends_verification_email(sign_up, mailoutbox, settings):
    settings.SITE_URL = "https://portal.example"

    response = sign_up()

    assert response.status_code == 302
    user = User.objects.get(email="new.artist@example.test")
    assert user.display_name == "New Artist"
    assert not EmailAddress.objects.get(user=user).verified
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["new.artist@example.test"]
    link = CONFIRM_LINK.search(message.body).group(0)
    # The link is built from SITE_URL, not from the request's Host header.
    assert link.startswith("https://portal.example/accounts/confirm-email/")


def test_unverified_user_cannot_sign_in_or_reach_the_dashboard(client, sign_up, mailoutbox, password):
    sign_up()
    client.logout()

    response = client.post(reverse("account_login"), {"login": "new.artist@example.test", "password": password})

    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    assert client.get(reverse("dashboard")).status_code == 302
    assert "_auth_user_id" not in client.session


def test_following_the_verification_link_verifies_and_signs_in(client, sign_up, mailoutbox):
    sign_up()
    link = CONFIRM_LINK.search(mailoutbox[0].body).group(0)
    path = "/" + link.split("/", 3)[3]

    # GET shows a confirmation page; the POST is what confirms (no state change on GET).
    assert client.get(path).status_code == 200
    response = client.post(path)

    assert response.status_code == 302
    assert EmailAddress.objects.get(email="new.artist@example.test").verified
    dashboard = client.get(reverse("dashboard"))
    assert dashboard.status_code == 200
    assert "Welcome, New Artist" in dashboard.text


def test_signup_requires_a_display_name(sign_up):
    response = sign_up(display_name="   ")

    assert response.status_code == 200
    assert not User.objects.filter(email="new.artist@example.test").exists()
    assert "display_name" in response.context["form"].errors


def test_signup_with_a_taken_email_creates_no_account_and_reveals_nothing(sign_up, make_user, mailoutbox):
    make_user(email="taken@example.test")

    response = sign_up(email="Taken@Example.test")

    # Same answer as a fresh sign-up (no account enumeration); the owner of the
    # address is told by email instead.
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    assert User.objects.filter(email__iexact="taken@example.test").count() == 1
    assert len(mailoutbox) == 1
    assert "already" in mailoutbox[0].body.lower()


def test_verified_user_signs_in_by_email_and_sees_dashboard(client, artist, password):
    response = client.post(reverse("account_login"), {"login": artist.email, "password": password})

    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard")
    assert "Welcome, Ada Artist" in client.get(reverse("dashboard")).text


def test_sign_out_ends_the_session(artist_client):
    response = artist_client.post(reverse("account_logout"))

    assert response.status_code == 302
    assert artist_client.get(reverse("dashboard")).status_code == 302


def test_password_reset_email_links_to_the_site(
    client, artist, mailoutbox, settings, django_capture_on_commit_callbacks
):
    settings.SITE_URL = "https://portal.example"

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("account_reset_password"), {"email": artist.email})

    assert len(mailoutbox) == 1
    assert "https://portal.example/accounts/password/reset/key/" in mailoutbox[0].body


def test_profile_updates_display_name(artist_client, artist):
    response = artist_client.post(
        reverse("accounts:profile"), {"display_name": "  Ada   Lovelace ", "language": "", "time_zone": "UTC"}
    )

    assert response.status_code == 302
    artist.refresh_from_db()
    assert artist.display_name == "Ada Lovelace"


def test_landing_page_states_the_promise(client):
    response = client.get(reverse("landing"))

    assert response.status_code == 200
    assert "not used unless you say yes" in response.text


def test_allauth_pages_use_the_site_layout(client):
    response = client.get(reverse("account_login"))

    assert 'class="skip-link"' in response.text
    assert "css/portal.css" in response.text
