"""The interactive API documentation in a real Chromium, under the site's strict CSP (no CDN, no inline script)."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_api_docs_render_from_our_own_static_files_with_no_csp_violation(browser_page, live_server):
    page = browser_page
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and problems.append(msg.text))
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    response = page.goto("/api/v1/docs")

    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.get_by_text("/api/v1/consent/check").first.wait_for()
    page.get_by_text("/api/v1/consent/changes").first.wait_for()
    assert problems == []
    assert all(url.startswith(live_server.url) for url in requested), requested
