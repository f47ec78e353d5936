"""How long the upload fuzz test takes, and what the corpus turns into.

    DATABASE_URL=postgres://… REDIS_URL=redis://… .venv/bin/python benchmarks/bench_fuzz.py [--runs 3] [--seed N]

Runs tracks/tests/test_fuzz_uploads.py the way CI does (pytest, a fresh test
database, the real upload view and processing task) and reports, per run, the
wall time of the whole pytest process, the time the 1,000 files took inside the
test, and the outcome counts (refusal codes, ready and failed tracks).
Then times the parsing alone (tracks.metadata and tracks.artwork on every case,
no Django request) and lists the slowest cases, to find a file that costs more
than it should.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_test(seed: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        env = {**os.environ, "FUZZ_SEED": str(seed), "FUZZ_REPORT": str(report)}
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "pytest", "tracks/tests/test_fuzz_uploads.py", "-q", "-p", "no:cacheprovider"],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        wall = time.monotonic() - started
        return {"pytest_wall_seconds": round(wall, 1), **json.loads(report.read_text())}


def time_parsing(seed: int, count: int) -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatorportal.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings

    from tracks import artwork, metadata
    from tracks.tests.fuzz_corpus import corpus

    timings = []
    for case in corpus(seed=seed, count=count):
        started = time.perf_counter()
        try:
            audio = metadata.read(
                io.BytesIO(case.data),
                min_duration=settings.TRACKS_MIN_DURATION_SECONDS,
                max_duration=settings.TRACKS_MAX_DURATION_SECONDS,
            )
            if audio.picture is not None:
                artwork.make_renditions(audio.picture.data)
        except (metadata.MetadataError, artwork.ArtworkError):
            pass
        timings.append((time.perf_counter() - started, str(case)))
    timings.sort(reverse=True)
    return {
        "parse_total_seconds": round(sum(t for t, _ in timings), 2),
        "slowest": [f"{t:.3f} s {case}" for t, case in timings[:5]],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_SEED", "10")))
    args = parser.parse_args()
    for run in range(args.runs):
        print(json.dumps({"run": run + 1, **run_test(args.seed)}, indent=1))
    print(json.dumps(time_parsing(args.seed, 1000), indent=1))


if __name__ == "__main__":
    main()
