import time

import pytest
import time_machine
from allauth.mfa.models import Authenticator
from django.urls import reverse

from tests.utils import totp

pytestmark = pytest.mark.django_db


def test_repeated_failed_logins_are_rate_limited(client, artist, password):
    login_url = reverse("account_login")
    for _ in range(5):
        response = client.post(login_url, {"login": artist.email, "password": "wrong password!"})
        assert response.status_code == 200

    # Even the right password is refused while the limit holds.
    response = client.post(login_url, {"login": artist.email, "password": password})

    assert response.status_code in {200, 429}
    assert "_auth_user_id" not in client.session
    assert "Too many failed login attempts" in response.text


def test_mfa_totp_enable_then_login_needs_a_code(client, artist, password):
    start = time.time()
    client.post(reverse("account_login"), {"login": artist.email, "password": password})
    # allauth asks for the password again before a security change.
    client.post(reverse("account_reauthenticate"), {"password": password})
    activate_url = reverse("mfa_activate_totp")
    page = client.get(activate_url)
    assert page.status_code == 200
    secret = client.session["mfa.totp.secret"]

    response = client.post(activate_url, {"code": totp(secret, start)})

    assert response.status_code == 302
    assert Authenticator.objects.filter(user=artist, type=Authenticator.Type.TOTP).exists()

    client.post(reverse("account_logout"))
    with time_machine.travel(start + 90, tick=True):
        response = client.post(reverse("account_login"), {"login": artist.email, "password": password})
        assert response.status_code == 302
        assert response["Location"] == reverse("mfa_authenticate")
        assert "_auth_user_id" not in client.session
        assert client.get(reverse("dashboard")).status_code == 302

        wrong = client.post(reverse("mfa_authenticate"), {"code": "000000"})
        assert wrong.status_code == 200
        assert "_auth_user_id" not in client.session

        response = client.post(reverse("mfa_authenticate"), {"code": totp(secret, time.time())})
        assert response.status_code == 302
        assert client.get(reverse("dashboard")).status_code == 200
