"""axe-core on every page, per role, at 1280 and 390 px, light and dark: no violation of any impact,
and nothing wider than a 390 px screen."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlencode

import pytest

from labels import bulk as bulk_changes
from labels.models import ConsentProposal
from tests.accessibility import axe_findings, horizontal_overflow
from tests.demo import make_user, seed_demo
from tracks.models import Track

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a long and unusual passphrase 7"
# "<page> · Creator Consent Portal": a page name, then the site's.
TITLE = re.compile(r"^\S.* · Creator Consent Portal$")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def artist_pages(demo) -> list[str]:
    track = demo.tracks[0]
    never = demo.tracks[-1]
    proposal = ConsentProposal.objects.filter(artist=demo.artist).first()
    assert proposal is not None, "the demo data has a proposal for the artist"
    # The artist's own bulk change, previewed (the page that asks for the confirmation).
    own_bulk = bulk_changes.preview_bulk_edit(
        actor=demo.artist,
        artist=demo.artist,
        tracks=Track.objects.filter(owner=demo.artist),
        changes={"generative_training": True},
        filter_params={},
        selection=None,
    )
    confirm = urlencode(
        {"purpose": "generative_training", "scope": "tracks", "track": str(never.uuid), "next": "/consent/"}
    )
    return [
        "/dashboard/",
        "/notices/",
        "/tracks/",
        "/tracks/upload/",
        f"/tracks/{track.uuid}/",
        f"/tracks/{track.uuid}/edit/",
        f"/tracks/{track.uuid}/delete/",
        f"/tracks/{track.uuid}/downstream/",
        "/consent/",
        "/consent/?use=generative_training&state=lapsed",
        f"/consent/tracks/{track.uuid}/",
        f"/consent/confirm/?{confirm}",
        "/consent/defaults/",
        "/consent/log/",
        f"/consent/bulk/{own_bulk.pk}/",
        "/policy/",
        f"/consent/policy/{demo.lapse_version.version}/",
        f"/policy/{demo.lapse_version.version}/reconfirm/",
        "/labels/",
        "/labels/delegations/",
        f"/labels/proposals/{proposal.pk}/",
        f"/public/tracks/{track.uuid}/",
        "/account/profile/",
        "/account/data/",
    ]


def manager_pages(demo) -> list[str]:
    slug = demo.label.slug
    return [
        "/dashboard/",
        "/labels/",
        f"/labels/{slug}/",
        f"/labels/{slug}/?use=recommendation&state=granted",
        f"/labels/{slug}/roster/",
        f"/labels/{slug}/bulk/",
        f"/labels/{slug}/import/",
    ]


def staff_pages(demo) -> list[str]:
    return [
        "/admin/",
        "/admin/accounts/user/",
        f"/admin/accounts/user/{demo.artist.pk}/change/",
        "/admin/consent/purpose/",
        "/admin/consent/policyversion/",
        f"/admin/consent/policyversion/{demo.lapse_version.pk}/change/",
        "/admin/consent/auditevent/",
        "/admin/tracks/track/",
        "/admin/notifications/notification/",
    ]


def visitor_pages(demo) -> list[str]:
    return ["/", "/accounts/login/", "/accounts/signup/", "/accounts/password/reset/", "/ai-policy/"]


ROLES = {
    "artist": (lambda demo: demo.artist, artist_pages),
    "label manager": (lambda demo: demo.manager, manager_pages),
    "staff": (
        lambda demo: make_user("staff@example.test", "Sam Staff", PASSWORD, is_staff=True, is_superuser=True),
        staff_pages,
    ),
    "visitor": (lambda demo: None, visitor_pages),
}


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("role", list(ROLES))
def test_every_page_has_no_axe_violation_and_fits_the_screen(
    role, width, scheme, _chromium, live_server, client, settings
):
    demo = seed_demo(password=PASSWORD, email_domain="example.test")
    who, pages = ROLES[role]
    user = who(demo)
    context = _chromium.new_context(
        base_url=live_server.url,
        viewport={"width": width, "height": 844 if width < 600 else 800},
        color_scheme=scheme,
    )
    if user is not None:
        client.force_login(user)
        context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    page = context.new_page()
    page.set_default_timeout(30_000)
    findings, too_wide, failed, bad_titles = [], [], [], []
    try:
        for path in pages(demo):
            response = page.goto(path)
            if response is None or response.status >= 400:
                failed.append(f"{path}: HTTP {response.status if response else 'none'}")
                continue
            findings += axe_findings(page)
            title = page.title()
            if not TITLE.match(title):
                bad_titles.append(f"{path}: {title!r}")
            overflow = horizontal_overflow(page)
            if width < 600 and overflow:
                too_wide.append(f"{path}: {overflow}px wider than the screen")
    finally:
        context.close()
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"axe-{role.replace(' ', '-')}-{width}-{scheme}.json").write_text(
        json.dumps(
            {
                "violations": len(findings),
                "nodes": sum(len(f.targets) for f in findings),
                "findings": [str(f) for f in findings],
                "too_wide": too_wide,
                "failed": failed,
                "bad_titles": bad_titles,
            },
            indent=1,
        )
    )
    assert failed == []
    assert [str(f) for f in findings] == []
    assert too_wide == []
    assert bad_titles == []
