""" "What AI crawlers see" for one track, taken from the very output that is served.

Headers and meta come from the same Signals the views apply, the meta HTML
from the same template the public page includes, the robots.txt, ai.txt and
tdmrep.json lines from the files as generated right now, and the file's
metadata from what the copy builder read back out of the finished copy.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext

from public import channels, copies, selectors
from public.answers import TRACKS_PREFIX, Answer, Signals, absolute, answer_for, signals_for
from public.models import DistributionCopy
from tracks.models import Track


@dataclass(frozen=True)
class CopyState:
    code: str  # current, rebuilding, failed, unsupported, none
    label: str
    serving: str  # "copy" or "original"
    format_label: str
    xmp_place: str | None
    c2pa: bool
    verified: dict = field(default_factory=dict)
    error: str = ""


@dataclass(frozen=True)
class CrawlerView:
    is_public: bool
    answer: Answer
    signals: Signals
    page_url: str
    audio_url: str
    header_lines: list[str]
    meta_html: str
    robots_lines: list[str]
    robots_listed: bool
    ai_txt_lines: list[str]
    tdmrep_rule: str
    copy: CopyState


def _relevant_lines(text: str, path: str) -> list[str]:
    """Group headers, the /t/ defaults and this track's own lines, as they stand in the file."""
    keep = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.lower().startswith("user-agent:"):
            keep.append(line)
            continue
        value = stripped.partition(":")[2].strip()
        target = value.split()[0] if value else ""
        if target in (TRACKS_PREFIX, path):
            keep.append(line)
    return keep


def _first_matching_rule(text: str, path: str) -> str:
    """The first tdmrep.json rule whose location is a prefix of the path (the spec's "first match wins")."""
    for rule in json.loads(text):
        if path.startswith(rule["location"]):
            return json.dumps(rule)
    return "(no rule: unset)"


def copy_state(track: Track, answer: Answer) -> CopyState:
    support = copies.support_for(track)
    copy = DistributionCopy.objects.filter(track=track).first()
    serving = "copy" if selectors.servable_copy(track, answer) else "original"
    state = functools.partial(CopyState, format_label=support.label, xmp_place=support.xmp_place, c2pa=support.c2pa)
    if not support.any:
        return state("unsupported", gettext("Not supported for this format"), serving)
    if copy is None:
        return state("none", gettext("No copy yet: the track has never been public"), serving)
    verified = copy.verified if copy.file else {}
    if serving == "copy":
        return state("current", gettext("Current"), serving, verified=verified)
    if copy.status == DistributionCopy.Status.FAILED:
        return state("failed", gettext("Failed"), serving, verified=verified, error=copy.last_error)
    return state("rebuilding", gettext("Rebuilding"), serving, verified=verified, error=copy.last_error)


def crawler_view(track: Track) -> CrawlerView:
    answer = answer_for(track.pk)
    signals = signals_for(answer)
    path = channels.track_path(track.uuid)
    robots = channels.robots_txt()
    return CrawlerView(
        is_public=selectors.is_public(track),
        answer=answer,
        signals=signals,
        page_url=absolute(reverse("public:track", kwargs={"uuid": track.uuid})),
        audio_url=absolute(reverse("public:audio", kwargs={"uuid": track.uuid})),
        header_lines=[f"{name}: {value}" for name, value in signals.headers],
        meta_html=render_to_string("public/_signal_meta.html", {"signals": signals}).strip(),
        robots_lines=_relevant_lines(robots.text, path),
        robots_listed=path in robots.listed,
        ai_txt_lines=_relevant_lines(channels.ai_txt().text, path),
        tdmrep_rule=_first_matching_rule(channels.tdmrep_json().text, path),
        copy=copy_state(track, answer),
    )
