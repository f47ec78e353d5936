"""Under /api/v1/ the site's browser middleware is passed by (creatorportal/site_middleware.py): no session,
signed-in user, messages or interface language; the security headers, the request id and the docs'
CSP stay. Everywhere else the site's middleware runs as before."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_a_signed_in_browser_session_is_no_credential_for_the_api(artist, make_track):
    track = make_track(owner=artist)
    browser = Client()
    browser.force_login(artist)

    response = browser.get(f"/api/v1/tracks/{track.uuid}/consent")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"


def test_api_answers_set_no_cookie_and_vary_on_neither_cookie_nor_language(artist, make_track, make_api_client, caller):
    track = make_track(owner=artist)
    _, token = make_api_client(purposes=["recommendation"])
    response = caller(token).http.get(
        f"/api/v1/tracks/{track.uuid}/consent", headers={"Accept-Language": "de", "Cookie": "sessionid=stale"}
    )

    assert response.status_code == 200
    assert not response.cookies
    vary = response.get("Vary", "")
    assert "Cookie" not in vary and "Accept-Language" not in vary
    assert "Content-Language" not in response
    assert len(response["X-Request-ID"]) >= 8
    assert response["X-Content-Type-Options"] == "nosniff"


def test_the_interactive_docs_keep_the_strict_csp():
    response = Client().get("/api/v1/docs")

    assert response.status_code == 200
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_site_pages_still_run_the_browser_middleware(artist):
    browser = Client()
    signup = browser.get("/accounts/signup/", headers={"Accept-Language": "de"})
    assert "csrftoken" in signup.cookies
    assert signup["Content-Language"] == "de"

    browser.force_login(artist)
    assert browser.get("/dashboard/").status_code == 200
