"""The batch chain functions write the very bytes seal() and personal_digest() write, event by event."""

from __future__ import annotations

import datetime
import random
import uuid

import pytest

from consent import chain
from consent.models import GENESIS_HASH

# Strings JSON escapes (quotes, backslashes, control characters), braces the template must keep,
# and characters ensure_ascii=False leaves alone.
AWKWARD = ["plain", 'a "quoted" \\ title', "tab\there\nnewline\x00\x1f", "{braces} {0} }{", "Ünïcödé ♫ \u2028 😀", ""]

COMMON = {
    "chain_version": chain.CURRENT_VERSION,
    "actor_id": 7,
    "source": "bulk",
    "kind": "consent_changed",
    "policy_version_id": 3,
    "request_id": 'req "1" {x}',
    "receipt_id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "actor_data_digest": "",
    "label_id": 11,
    "bulk_change_id": None,
    "created_at": datetime.datetime(2026, 11, 30, 20, 1, 2, 345678, tzinfo=datetime.UTC),
}
VARYING = (
    "artist_id",
    "seq",
    "actor_kind",
    "track_id",
    "track_uuid",
    "purpose_id",
    "purpose_slug",
    "old_value",
    "new_value",
    "subject_data_digest",
)


def _rows(n: int, rng: random.Random) -> list[tuple]:
    rows = []
    for i in range(n):
        artist = 1 + i % 3
        rows.append(
            (
                artist,
                0,
                rng.choice(["label", "artist"]),
                1000 + i,
                str(uuid.UUID(int=rng.getrandbits(128))),
                rng.choice([1, 2, 30]),
                rng.choice(AWKWARD),
                rng.choice(["granted", "not_granted"]),
                rng.choice(["granted", "not_granted"]),
                rng.choice(["", "ab" * 32]),
            )
        )
    return rows


def test_link_events_match_event_hash_for_every_event_including_awkward_strings():
    rng = random.Random(15)
    rows = _rows(300, rng)
    heads = {1: (0, GENESIS_HASH), 2: (41, "f" * 64), 3: (0, GENESIS_HASH)}
    expected_heads = dict(heads)

    links = chain.link_events(chain.LinkTemplate(COMMON, VARYING), rows, heads)

    for row, (seq, prev_hash, digest) in zip(rows, links, strict=True):
        event = {**COMMON, **dict(zip(VARYING, row, strict=True)), "seq": seq}
        head_seq, head_hash = expected_heads[row[0]]
        assert (seq, prev_hash) == (head_seq + 1, head_hash)
        assert digest == chain.event_hash(prev_hash, event)
        expected_heads[row[0]] = (seq, digest)
    assert heads == expected_heads


def test_link_events_match_seal_for_an_event_with_its_title():
    event = {
        **{k: v for k, v in COMMON.items() if k not in ("chain_version", "actor_data_digest")},
        "artist_id": 5,
        "actor_kind": "label",
        "track_id": 99,
        "track_uuid": uuid.UUID("87654321-4321-8765-4321-876543218765"),
        "track_title": 'My "Song" \\ {1}',
        "purpose_id": 2,
        "purpose_slug": "recommendation",
        "old_value": "not_granted",
        "new_value": "granted",
        "ip": "",
        "user_agent": "",
    }
    sealed = chain.seal(event, seq=4, prev_hash="a" * 64)
    [(key, digest)] = chain.commit_many(chain.SUBJECT_DATA_FIELDS, [(event["track_title"],)])
    assert chain.digest_matches(key, {"track_title": event["track_title"]}, digest)

    row = (5, 0, "label", 99, str(event["track_uuid"]), 2, "recommendation", "not_granted", "granted", digest)
    heads = {5: (3, "a" * 64)}
    [(seq, prev_hash, link)] = chain.link_events(chain.LinkTemplate(COMMON, VARYING), [row], heads)
    # The same event sealed one at a time, with the same digest, hashes the same.
    same = {**sealed.row, "subject_data_digest": digest}
    assert (seq, prev_hash) == (4, "a" * 64)
    assert link == chain.event_hash("a" * 64, same)


def test_commit_many_matches_personal_digest_and_commits_to_nothing_when_blank():
    rows = [("10.0.0.1", 'agent "x"'), ("", ""), ("", "ua only"), ("::1", "Ünï\n")]
    parts = chain.commit_many(chain.ACTOR_DATA_FIELDS, rows)
    assert parts[1] == ("", "")
    for (ip, agent), (key, digest) in zip(rows, parts, strict=True):
        if ip or agent:
            assert digest == chain.personal_digest(key, {"ip": ip, "user_agent": agent})
    assert len({key for key, _ in parts if key}) == 3  # a fresh key per event


@pytest.mark.parametrize("bad", [True, None, 1.5, datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)])
def test_a_value_the_template_cannot_write_canonically_is_refused(bad):
    row = (1, 0, "label", bad, "u", 2, "recommendation", "not_granted", "granted", "")
    with pytest.raises(TypeError):
        chain.link_events(chain.LinkTemplate(COMMON, VARYING), [row], {1: (0, GENESIS_HASH)})


def test_a_varying_field_the_hash_does_not_cover_is_refused():
    with pytest.raises(ValueError, match="hashed exactly once"):
        chain.LinkTemplate(COMMON, (*VARYING, "hash"))
