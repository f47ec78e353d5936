"""Every channel a crawler can read gives the artist's answer, and they all agree.

Each scenario is served by a real HTTP server and read back with the
crawler-side readers in crawler.py, for one track of each format.
"""

from __future__ import annotations

import pytest

from public.tests import crawler
from public.tests.crawler import ABSENT, GRANTED, RESERVED

pytestmark = pytest.mark.django_db(transaction=True)

# Fixture file -> format key; Ogg Vorbis has no place for the answer inside the file.
FILES = {"good.mp3": "mp3", "good.wav": "wav", "good.flac": "flac", "good.m4a": "m4a", "good.ogg": "vorbis"}


def read_every_channel(base: str, track_uuid, format_key: str) -> dict[str, str]:
    path = f"/t/{track_uuid}/"
    url = f"{base}{path}"
    answers: dict[str, str] = {}
    for method in ("GET", "HEAD"):
        for name, target in (("page", path), ("audio", f"{path}audio")):
            response = crawler.fetch(base, target, method=method)
            if response.status == 404:
                answers[f"{name} {method}"] = ABSENT
                continue
            assert response.status == 200, (target, response.status)
            answers.update({f"{name} {method} {k}": v for k, v in crawler.from_headers(response.headers).items()})
            if name == "page" and method == "GET":
                answers.update(crawler.from_meta(response.body.decode()))
            if name == "audio" and method == "GET" and format_key in ("mp3", "wav", "flac", "m4a"):
                answers.update(crawler.from_file(response.body, format_key))
    ranged = crawler.fetch(base, f"{path}audio", headers={"Range": "bytes=0-99"})
    if ranged.status != 404:
        assert ranged.status == 206
        answers.update({f"audio Range {k}": v for k, v in crawler.from_headers(ranged.headers).items()})
    answers.update(crawler.from_robots(crawler.fetch(base, "/robots.txt").body.decode(), path, url))
    answers.update(crawler.from_ai_txt(crawler.fetch(base, "/ai.txt").body.decode(), url))
    answers.update(crawler.from_tdmrep(crawler.fetch(base, "/.well-known/tdmrep.json").body.decode(), path))
    return answers


def _granted(make_public_track, change_answer):
    return [make_public_track(name, granted=True) for name in FILES]


def _reserved(make_public_track, change_answer):
    return [make_public_track(name) for name in FILES]


def _withdrawn_after_a_grant(make_public_track, change_answer):
    tracks = [make_public_track(name, granted=True) for name in FILES]
    for track in tracks:
        change_answer(track, False)
    return tracks


def _made_private(make_public_track, change_answer):
    from public import services

    tracks = [make_public_track(name, granted=True) for name in FILES]
    for track in tracks:
        services.set_track_public(actor=track.owner, track=track, public=False)
    return tracks


def _deleted(make_public_track, change_answer):
    from tracks.services import delete_track

    tracks = [make_public_track(name, granted=True) for name in FILES]
    for track in tracks:
        delete_track(track=track, actor=track.owner)
    return tracks


SCENARIOS = {
    "granted": (_granted, GRANTED),
    "reserved": (_reserved, RESERVED),
    "withdrawn after a grant": (_withdrawn_after_a_grant, RESERVED),
    "made private": (_made_private, ABSENT),
    "deleted": (_deleted, ABSENT),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_channel_gives_the_artists_answer(scenario, live_server, make_public_track, change_answer):
    setup, expected = SCENARIOS[scenario]
    tracks = setup(make_public_track, change_answer)

    for track, format_key in zip(tracks, FILES.values(), strict=True):
        answers = read_every_channel(live_server.url, track.uuid, format_key)
        policy = answers.pop("tdm-policy meta present", None)
        if expected == ABSENT:
            # Not public: the page and audio do not exist for crawlers, and no
            # site-wide file makes an exception for the path.
            http = {k: v for k, v in answers.items() if k.startswith(("page", "audio"))}
            assert set(http.values()) == {ABSENT}, (scenario, format_key, http)
            rest = {k: v for k, v in answers.items() if k not in http}
            assert GRANTED not in rest.values(), (scenario, format_key, rest)
            assert rest["robots.txt Content-Usage (*)"] == RESERVED
            assert rest["tdmrep.json"] == RESERVED
            continue
        disagreeing = {k: v for k, v in answers.items() if v != expected}
        assert not disagreeing, (scenario, format_key, disagreeing)
        assert policy == ("yes" if expected == RESERVED else "no")
        if format_key in ("mp3", "wav", "m4a"):
            assert "XMP plus:DataMining" in answers
        if format_key != "vorbis":
            assert "C2PA cawg.training-mining" in answers and "C2PA c2pa.training-mining" in answers
