"""robots.txt, ai.txt and tdmrep.json at catalogue scale, and the TDM policy documents."""

from __future__ import annotations

import json

import pytest
from protego import Protego

from public.models import PublicTrack
from public.tests import crawler
from public.tests.crawler import GRANTED, RESERVED
from tracks.models import Track

pytestmark = pytest.mark.django_db

LIMIT = 500 * 1024


def test_site_files_stay_under_500_kib_with_100000_granted_tracks_and_keep_the_default_reserved(
    client, artist, many_granted_public_tracks
):
    first = many_granted_public_tracks(100_000)
    assert PublicTrack.objects.filter(is_public=True).count() == 100_000
    last = Track.objects.filter(owner=artist).order_by("-id").first()
    first_path, last_path = f"/t/{first.uuid}/", f"/t/{last.uuid}/"

    bodies = {path: client.get(path) for path in ("/robots.txt", "/ai.txt", "/.well-known/tdmrep.json")}

    for path, response in bodies.items():
        assert response.status_code == 200, path
        assert len(response.content) < LIMIT, (path, len(response.content))
    robots = bodies["/robots.txt"].content.decode()
    ai_txt = bodies["/ai.txt"].content.decode()
    tdmrep = bodies["/.well-known/tdmrep.json"].content.decode()
    # The exceptions that fit are listed, oldest first; the default for /t/ stays reserved.
    assert crawler.content_usage(robots, "AnyBot", first_path) == GRANTED
    assert crawler.content_usage(robots, "AnyBot", last_path) == RESERVED
    assert crawler.content_usage(robots, "AnyBot", "/t/") == RESERVED
    assert crawler.from_ai_txt(ai_txt, f"http://testserver{last_path}")["ai.txt"] == RESERVED
    assert crawler.from_tdmrep(tdmrep, last_path)["tdmrep.json"] == RESERVED
    assert crawler.from_tdmrep(tdmrep, first_path)["tdmrep.json"] == GRANTED
    assert "More public tracks allow AI training than fit" in robots
    # The track left out of the files carries its exception itself.
    page = client.get(last_path)
    assert crawler.from_headers(page.headers)["Content-Usage header"] == GRANTED
    assert crawler.from_headers(page.headers)["tdm-reservation header"] == GRANTED
    assert crawler.from_meta(page.content.decode())["tdm-reservation meta"] == GRANTED


def test_site_files_are_cheap_to_revalidate(client):
    first = client.get("/robots.txt")
    again = client.get("/robots.txt", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    assert first["Cache-Control"] == "public, no-cache"


def test_the_tdm_policy_is_machine_readable_and_links_a_human_readable_page(client):
    response = client.get("/ai-policy.json")
    assert response["Content-Type"] == "application/ld+json"
    policy = json.loads(response.content)
    assert policy["@context"] == ["http://www.w3.org/ns/odrl.jsonld", "http://www.w3.org/ns/tdmrep.jsonld"]
    assert policy["@type"] == "Offer" and policy["profile"] == "http://www.w3.org/ns/tdmrep"
    assert policy["permission"][0]["action"] == "tdm:mine"
    assert policy["permission"][0]["duty"] == [{"action": "obtainConsent"}]
    human = client.get(policy["assigner"]["vcard:hasURL"].removeprefix("http://testserver"))
    assert human.status_code == 200 and human["Content-Type"].startswith("text/html")
    tdmrep = json.loads(client.get("/.well-known/tdmrep.json").content)
    assert tdmrep[-1] == {"location": "/t/", "tdm-reservation": 1, "tdm-policy": "http://testserver/ai-policy.json"}


def test_robots_txt_keeps_ai_crawlers_off_reserved_tracks_only(client, artist, make_track_row, change_answer):
    from public.services import set_track_public

    granted, reserved = make_track_row(owner=artist), make_track_row(owner=artist)
    change_answer(granted, True)
    for track in (granted, reserved):
        set_track_public(actor=artist, track=track, public=True)
    robots = client.get("/robots.txt").content.decode()

    for token in ("GPTBot", "ClaudeBot", "CCBot", "Google-Extended", "Applebot-Extended", "PerplexityBot"):
        seen = crawler.from_robots(robots, f"/t/{granted.uuid}/audio", f"http://testserver/t/{granted.uuid}/audio")
        assert seen[f"robots.txt {token} may fetch"] == GRANTED
        assert seen[f"robots.txt Content-Usage ({token})"] == GRANTED
        seen = crawler.from_robots(robots, f"/t/{reserved.uuid}/", f"http://testserver/t/{reserved.uuid}/")
        assert seen[f"robots.txt {token} may fetch"] == RESERVED
    # Search engines and everyone else may still fetch reserved tracks; the preference says no training.
    assert Protego.parse(robots).can_fetch(f"http://testserver/t/{reserved.uuid}/", "Googlebot")
    assert crawler.content_usage(robots, "Googlebot", f"/t/{reserved.uuid}/") == RESERVED
