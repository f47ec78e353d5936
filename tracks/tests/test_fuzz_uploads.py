"""Bad input at scale: 1,000 hostile files through the real upload view and processing task.

The corpus is seeded (tracks/tests/fuzz_corpus.py): FUZZ_SEED and FUZZ_FILES
pick another one, FUZZ_REPORT names a file to write the outcome counts to
(benchmarks/bench_fuzz.py uses it). Every file must get an answer that is
neither a 500 nor an internal error, refused files must leave nothing
stored, accepted ones must end ready or failed with a plain reason.
"""

from __future__ import annotations

import collections
import json
import os
import re
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tracks.models import Track
from tracks.tests.conftest import stored_files
from tracks.tests.fuzz_corpus import FuzzCase, corpus

SEED = int(os.environ.get("FUZZ_SEED", "10"))
COUNT = int(os.environ.get("FUZZ_FILES", "1000"))

# What an artist must never be shown: internals instead of a reason.
_NOT_PLAIN = re.compile(
    r"traceback|exception|errno|mutagen|\bPIL\b|struct\.|NoneType|object at 0x|\\x[0-9a-f]{2}|\bb'|\bb\"|"
    r"\bline \d+|\.py\b",
    re.IGNORECASE,
)
_INTERNAL_CODES = {"server_error", "internal_error"}


def is_plain(reason: str) -> bool:
    """A sentence an artist can read: not empty, not a traceback or a byte dump, not endless."""
    text = (reason or "").strip()
    return 10 <= len(text) <= 500 and text[0].isupper() and text[-1] in ".)" and not _NOT_PLAIN.search(text)


def _post_batch(client, batch: list[FuzzCase]):
    files = [SimpleUploadedFile(case.upload_name, case.data, content_type="application/octet-stream") for case in batch]
    return client.post(reverse("tracks:upload"), {"files": files}, HTTP_ACCEPT="application/json")


def _referenced_files(owner) -> set[str]:
    names = Track.objects.filter(owner=owner).values_list("audio_file", "artwork", "artwork_thumbnail")
    return {name for row in names for name in row if name}


@pytest.mark.django_db
def test_a_thousand_hostile_files_each_get_a_plain_answer_and_leave_nothing_behind(
    artist, artist_client, media, settings, tmp_path, django_capture_on_commit_callbacks
):
    spool = tmp_path / "spool"
    spool.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(spool)
    # A 500 is counted and reported with its cases instead of stopping the run.
    artist_client.raise_request_exception = False
    cases = corpus(seed=SEED, count=COUNT)
    batch_size = settings.TRACKS_MAX_FILES_PER_REQUEST
    started = time.monotonic()

    server_errors: list[str] = []
    answers: list[tuple[FuzzCase, dict]] = []
    for start in range(0, len(cases), batch_size):
        batch = cases[start : start + batch_size]
        with django_capture_on_commit_callbacks(execute=True):
            response = _post_batch(artist_client, batch)
        if response.status_code >= 500:
            server_errors += [f"HTTP {response.status_code}: {case}" for case in batch]
            continue
        results = response.json()["results"]
        assert len(results) == len(batch), f"{len(batch) - len(results)} files of cases {batch} got no answer"
        answers += zip(batch, results, strict=True)
    elapsed = time.monotonic() - started

    tracks = {str(t.uuid): t for t in Track.objects.filter(owner=artist)}
    refused = [(case, result) for case, result in answers if not result["ok"]]
    accepted = [(case, tracks[result["url"].rstrip("/").rsplit("/", 1)[1]]) for case, result in answers if result["ok"]]
    outcome = collections.Counter(result["code"] for _, result in refused)
    outcome.update(f"{track.status}:{track.failure_code}".rstrip(":") for _, track in accepted)
    _report(elapsed=elapsed, outcome=outcome)

    assert server_errors == []
    internal = [f"{r['code']}: {case}" for case, r in refused if r["code"] in _INTERNAL_CODES]
    internal += [f"{t.failure_code}: {case}" for case, t in accepted if t.failure_code in _INTERNAL_CODES]
    assert internal == []
    not_plain = [f"{r['message']!r}: {case}" for case, r in refused if not is_plain(r["message"])]
    not_plain += [
        f"{t.failure_reason!r}: {case}" for case, t in accepted if t.failure_reason and not is_plain(t.failure_reason)
    ]
    assert not_plain == []
    stuck = [str(case) for case, track in accepted if track.status == Track.Status.PROCESSING]
    assert stuck == []
    assert set(stored_files(media)) == _referenced_files(artist), "stored files and tracks disagree"
    assert list(spool.iterdir()) == [], "upload spool files were left behind"
    assert len(answers) == len(cases)


def _report(*, elapsed: float, outcome: collections.Counter) -> None:
    summary = {"seed": SEED, "files": COUNT, "seconds": round(elapsed, 1), "outcomes": dict(outcome.most_common())}
    print(json.dumps(summary, indent=1))  # shown with -s
    if os.environ.get("FUZZ_REPORT"):
        with open(os.environ["FUZZ_REPORT"], "w") as out:
            json.dump(summary, out, indent=1)


@pytest.mark.parametrize(
    "reason",
    ["", "error", "struct.error: unpack requires a buffer of 4 bytes", "Traceback (most recent call last): …",
     "Could not read b'\\x00\\x01'.", "the file is damaged."],
)  # fmt: skip
def test_the_plain_reason_check_refuses_internals(reason):
    assert not is_plain(reason)


def test_the_plain_reason_check_accepts_the_portals_sentences():
    assert is_plain("The FLAC file was cut short: its last audio frame is missing or incomplete.")
    assert is_plain("This is a ZIP archive (or an Office document), not audio. Allowed formats: MP3, FLAC (…).")
