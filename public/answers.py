"""The artist's answer for AI training by other companies, and every signal derived from it.

`signals_for` is the one function from the consent state to what any channel
says: HTTP headers, HTML meta tags, robots.txt and ai.txt lines, tdmrep.json
rules, the XMP value and the C2PA assertions inside the file. The channels
only format its output, so they cannot disagree.

A track is "reserved" unless its artist granted the purpose; no Consent row
means not granted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.db.models import QuerySet
from django.urls import reverse

from consent.models import Consent, Purpose

PURPOSE_SLUG = Purpose.THIRD_PARTY_AI_TRAINING

# W3C TDMRep (final community group report): header and meta names.
TDM_RESERVATION = "tdm-reservation"
TDM_POLICY = "tdm-policy"
# IETF AI preferences: the attachment draft's field, the vocabulary's label.
CONTENT_USAGE = "Content-Usage"
TRAIN_AI = "train-ai"
# The "noai" convention: one X-Robots-Tag line, one robots meta tag.
X_ROBOTS_TAG = "X-Robots-Tag"
NOAI = "noai, noimageai"
# PLUS License Data Format, property plus:DataMining (IPTC Photo Metadata 2023.1).
PLUS_NAMESPACE = "http://ns.useplus.org/ldf/xmp/1.0/"
DMI_PROHIBITED_AIML_TRAINING = "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-AIMLTRAINING"
DMI_ALLOWED = "http://ns.useplus.org/ldf/vocab/DMI-ALLOWED"
# C2PA: the CAWG training-and-data-mining assertion and the C2PA 1.x one it replaced.
CAWG_TRAINING_MINING = "cawg.training-mining"
C2PA_TRAINING_MINING = "c2pa.training-mining"
TRAINING_MINING_USES = ("ai_generative_training", "ai_training", "ai_inference", "data_mining")

# The AI crawlers that document a robots.txt product token of their own.
AI_CRAWLER_TOKENS = ("GPTBot", "ClaudeBot", "CCBot", "Google-Extended", "Applebot-Extended", "PerplexityBot")

# Every public track's URLs start here; site-wide rules are written for it.
TRACKS_PREFIX = "/t/"


@dataclass(frozen=True)
class Answer:
    """Whether the artist allowed AI training by other companies."""

    granted: bool

    @property
    def token(self) -> str:
        return "granted" if self.granted else "reserved"


@dataclass(frozen=True)
class Signals:
    """Everything every channel says for one answer."""

    answer: Answer
    tdm_reservation: str
    tdm_policy: str
    content_usage: str
    x_robots_tag: str
    badge: str
    data_mining_uri: str
    training_mining_use: str
    crawlers_may_fetch: bool
    ai_txt_rule: str

    @property
    def headers(self) -> list[tuple[str, str]]:
        """The HTTP response fields, in order. A granted track gets no noai line and no policy."""
        fields = [(TDM_RESERVATION, self.tdm_reservation)]
        if self.tdm_policy:
            fields.append((TDM_POLICY, self.tdm_policy))
        fields.append((CONTENT_USAGE, self.content_usage))
        if self.x_robots_tag:
            fields.append((X_ROBOTS_TAG, self.x_robots_tag))
        return fields

    @property
    def meta(self) -> list[tuple[str, str]]:
        """(name, content) of the HTML meta elements."""
        tags = [(TDM_RESERVATION, self.tdm_reservation)]
        if self.tdm_policy:
            tags.append((TDM_POLICY, self.tdm_policy))
        if self.x_robots_tag:
            tags.append(("robots", self.x_robots_tag))
        return tags

    def c2pa_assertions(self) -> list[dict]:
        """The CAWG assertion and the legacy C2PA one, with the same answer for every use."""
        return [
            {
                "label": CAWG_TRAINING_MINING,
                "data": {"entries": {f"cawg.{use}": {"use": self.training_mining_use} for use in TRAINING_MINING_USES}},
            },
            {
                "label": C2PA_TRAINING_MINING,
                "data": {"entries": {f"c2pa.{use}": {"use": self.training_mining_use} for use in TRAINING_MINING_USES}},
            },
        ]


def absolute(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def policy_url() -> str:
    """The machine-readable TDM policy (JSON-LD); it links the human-readable page."""
    return absolute(reverse("public:policy_json"))


@cache
def _signals(granted: bool, policy: str) -> Signals:
    if granted:
        return Signals(
            answer=Answer(True),
            tdm_reservation="0",
            tdm_policy="",
            content_usage=f"{TRAIN_AI}=y",
            x_robots_tag="",
            badge="AI training by other companies: allowed",
            data_mining_uri=DMI_ALLOWED,
            training_mining_use="allowed",
            crawlers_may_fetch=True,
            ai_txt_rule="Allow",
        )
    return Signals(
        answer=Answer(False),
        tdm_reservation="1",
        tdm_policy=policy,
        content_usage=f"{TRAIN_AI}=n",
        x_robots_tag=NOAI,
        badge="AI training by other companies: not allowed",
        data_mining_uri=DMI_PROHIBITED_AIML_TRAINING,
        training_mining_use="notAllowed",
        crawlers_may_fetch=False,
        ai_txt_rule="Disallow",
    )


def signals_for(answer: Answer) -> Signals:
    """The one function from the consent state to every signal."""
    return _signals(answer.granted, policy_url())


# --- Reading the consent state -------------------------------------------------------------


def granted_consents() -> QuerySet[Consent]:
    return Consent.objects.filter(purpose__slug=PURPOSE_SLUG, granted=True)


def answer_for(track_id: int) -> Answer:
    """The current answer for one track, read from consent (one query)."""
    return Answer(granted_consents().filter(track_id=track_id).exists())


def answers_for(track_ids: Iterable[int]) -> dict[int, Answer]:
    ids = list(track_ids)
    granted = set(granted_consents().filter(track_id__in=ids).values_list("track_id", flat=True))
    return {track_id: Answer(track_id in granted) for track_id in ids}
