"""The site-wide files crawlers read, and the per-response signals, all formatted from public.answers.

robots.txt and ai.txt stay under 500 KiB, the limit crawlers read
(RFC 9309), whatever the catalogue's size; tdmrep.json keeps the same
budget. The default for /t/ is always "reserved". Exceptions for granted
tracks are listed while they fit; the tracks that do not fit keep their
exception in the per-URL signals (headers, meta, the file itself), which
readers combine with the site file so that a listed-or-not track can never
look more permissive than its artist's answer.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpResponseBase
from django.urls import reverse

from public import selectors
from public.answers import AI_CRAWLER_TOKENS, TRACKS_PREFIX, Answer, Signals, absolute, policy_url, signals_for

RESERVED = Answer(False)
GRANTED = Answer(True)

_EXAMPLE_PATH = f"{TRACKS_PREFIX}{uuid.UUID(int=0)}/"


def track_path(track_uuid: uuid.UUID | str) -> str:
    """The path every URL of a public track starts with (the page; the audio and artwork are below it)."""
    return f"{TRACKS_PREFIX}{track_uuid}/"


def apply_signals(response: HttpResponseBase, signals: Signals) -> HttpResponseBase:
    for name, value in signals.headers:
        response[name] = value
    return response


@dataclass(frozen=True)
class SiteFile:
    text: str
    listed: frozenset[str]
    complete: bool

    @property
    def etag(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:32]

    @property
    def size(self) -> int:
        return len(self.text.encode())


def _size(lines: Sequence[str]) -> int:
    return sum(len(line.encode()) + 1 for line in lines)


def _fit(
    *,
    fixed: Sequence[str],
    per_track: Callable[[str], list[str]],
    overflow_note: Sequence[str],
    max_bytes: int | None,
) -> tuple[list[str], bool]:
    """The granted public tracks' paths that fit in the budget, and whether that is all of them.

    Every exception costs the same number of bytes (a uuid has one length),
    so the number that fits is computed first and only that many rows are read.
    """
    budget = max_bytes if max_bytes is not None else settings.PUBLIC_SITE_FILE_MAX_BYTES
    room = budget - _size(fixed) - _size(overflow_note)
    cost = _size(per_track(_EXAMPLE_PATH))
    capacity = max(0, room // cost)
    found = selectors.granted_public_track_uuids(limit=capacity + 1)
    complete = len(found) <= capacity
    return [track_path(u) for u in found[:capacity]], complete


_OVERFLOW = (
    "# More public tracks allow AI training than fit in this file. For those, the default above",
    "# stays in force here and each track's own page, audio headers and file carry the exception.",
)


def robots_txt(*, max_bytes: int | None = None) -> SiteFile:
    reserved, granted = signals_for(RESERVED), signals_for(GRANTED)
    intro = [
        "# Public tracks live under /t/. Whether other companies may train AI models on a track is its",
        "# artist's choice; unless the artist said yes, the answer is no (Content-Usage: IETF AI preferences).",
        f"# Policy: {reverse('public:policy_page')}",
        "User-Agent: *",
        "Allow: /",
        f"Content-Usage: {TRACKS_PREFIX} {reserved.content_usage}",
    ]
    ai_group = [
        "",
        "# AI crawlers with a robots.txt token of their own: kept off the tracks whose artist said no.",
        *(f"User-Agent: {token}" for token in AI_CRAWLER_TOKENS),
        f"Disallow: {TRACKS_PREFIX}",
        f"Content-Usage: {TRACKS_PREFIX} {reserved.content_usage}",
    ]

    def star_lines(path: str) -> list[str]:
        return [f"Content-Usage: {path} {granted.content_usage}"]

    def ai_lines(path: str) -> list[str]:
        return [f"Allow: {path}", f"Content-Usage: {path} {granted.content_usage}"]

    paths, complete = _fit(
        fixed=[*intro, *ai_group],
        per_track=lambda path: star_lines(path) + ai_lines(path),
        overflow_note=_OVERFLOW,
        max_bytes=max_bytes,
    )
    lines = [*intro]
    for path in paths:
        lines += star_lines(path)
    lines += ai_group
    for path in paths:
        lines += ai_lines(path)
    if not complete:
        lines += _OVERFLOW
    return SiteFile("\n".join(lines) + "\n", frozenset(paths), complete)


def ai_txt(*, max_bytes: int | None = None) -> SiteFile:
    """Spawning's ai.txt: Disallow means "not for AI training", Allow means it may be used."""
    reserved, granted = signals_for(RESERVED), signals_for(GRANTED)
    intro = [
        "# ai.txt: may the media under /t/ be used to train AI models? Each track's artist decides;",
        "# unless the artist said yes, the answer is no.",
        "User-Agent: *",
        f"{reserved.ai_txt_rule}: {TRACKS_PREFIX}",
    ]

    def per_track(path: str) -> list[str]:
        return [f"{granted.ai_txt_rule}: {path}"]

    paths, complete = _fit(fixed=intro, per_track=per_track, overflow_note=_OVERFLOW, max_bytes=max_bytes)
    lines = [*intro, *(line for path in paths for line in per_track(path))]
    if not complete:
        lines += _OVERFLOW
    return SiteFile("\n".join(lines) + "\n", frozenset(paths), complete)


def _rule(path: str, signals: Signals) -> dict:
    rule: dict = {"location": path, "tdm-reservation": int(signals.tdm_reservation)}
    if signals.tdm_policy:
        rule["tdm-policy"] = signals.tdm_policy
    return rule


def tdmrep_json(*, max_bytes: int | None = None) -> SiteFile:
    """W3C TDMRep rules: the first match wins, so each granted track's rule comes before the default."""
    reserved, granted = signals_for(RESERVED), signals_for(GRANTED)
    default = json.dumps(_rule(TRACKS_PREFIX, reserved))

    # One encoding, reused: a track's path is a uuid, which needs no escaping in JSON.
    template = json.dumps(_rule(_EXAMPLE_PATH, granted)) + ","

    def per_track(path: str) -> list[str]:
        return [template.replace(_EXAMPLE_PATH, path)]

    paths, complete = _fit(fixed=["[", default, "]"], per_track=per_track, overflow_note=[], max_bytes=max_bytes)
    lines = ["[", *(line for path in paths for line in per_track(path)), default, "]"]
    return SiteFile("\n".join(lines) + "\n", frozenset(paths), complete)


def tdm_policy() -> dict:
    """The machine-readable TDM policy (an ODRL offer, TDMRep profile) that tdm-policy points at."""
    return {
        "@context": ["http://www.w3.org/ns/odrl.jsonld", "http://www.w3.org/ns/tdmrep.jsonld"],
        "@type": "Offer",
        "profile": "http://www.w3.org/ns/tdmrep",
        "uid": policy_url(),
        "assigner": {
            "uid": settings.SITE_URL,
            "vcard:fn": "Creator Consent Portal, for the artists of its public tracks",
            "vcard:hasURL": absolute(reverse("public:policy_page")),
        },
        "permission": [
            {
                "target": absolute(TRACKS_PREFIX),
                "action": "tdm:mine",
                "duty": [{"action": "obtainConsent"}],
            }
        ],
    }
