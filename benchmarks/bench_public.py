"""Public signals benchmark: rebuild latency with a real worker, and the site-wide files at 100,000 tracks.

1. Rebuild latency: for one public track per format (the test fixtures, and a
   3-minute WAV and MP3 made with sox and ffmpeg), the artist's answer is
   changed through consent.services; the script measures, wall clock, from the
   commit of the change until the distribution copy that says the new answer is
   in place (status current, new answer embedded), with one real Celery worker
   (solo pool) on the broker in REDIS_URL.
2. robots.txt, ai.txt and tdmrep.json with --tracks granted public tracks:
   generation time and size.

Run it on a throwaway, migrated PostgreSQL database and a Redis database of your own:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_public REDIS_URL=redis://127.0.0.1:6379/6 \\
        .venv/bin/python manage.py migrate
    DATABASE_URL=... REDIS_URL=... .venv/bin/python benchmarks/bench_public.py

Options: --changes N per format (default 10), --tracks N (default 100000), --skip-large.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatorportal.settings")
_workdir = Path(tempfile.mkdtemp(prefix="bench-public-"))
os.environ.setdefault("MEDIA_ROOT", str(_workdir / "media"))
os.environ.setdefault("PUBLIC_C2PA_CERT_CHAIN", str(_workdir / "c2pa" / "chain.pem"))
os.environ.setdefault("PUBLIC_C2PA_PRIVATE_KEY", str(_workdir / "c2pa" / "key.pem"))
os.environ.setdefault("CELERY_QUEUE", f"bench-public-{os.getpid()}")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.db import connection  # noqa: E402

from accounts.models import User  # noqa: E402
from public import channels, devcert, services  # noqa: E402
from public.models import DistributionCopy  # noqa: E402
from public.tests.factories import copy_granted_public_track, set_third_party  # noqa: E402
from tracks import services as track_services  # noqa: E402
from tracks.models import Track  # noqa: E402

FIXTURES = ROOT / "tracks" / "tests" / "fixtures"


def wait(predicate, timeout: float, poll: float = 0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    raise TimeoutError("timed out")


def start_worker() -> subprocess.Popen:
    log = open(_workdir / "worker.log", "wb")  # noqa: SIM115 -- lives as long as the worker
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "creatorportal", "worker", "--pool=solo", "--loglevel=INFO",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", settings.CELERY_TASK_DEFAULT_QUEUE],
        cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    wait(lambda: b"ready." in (_workdir / "worker.log").read_bytes(), timeout=120, poll=0.2)
    return worker


def make_large_files() -> list[Path]:
    made = []
    wav = _workdir / "long.wav"
    subprocess.run(["sox", "-n", "-r", "44100", "-c", "2", "-b", "16", str(wav), "synth", "180", "pinknoise"],
                   check=True)  # fmt: skip
    made.append(wav)
    mp3 = _workdir / "long.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-b:a", "192k", str(mp3)], check=True)
    made.append(mp3)
    return made


def upload(owner: User, path: Path) -> Track:
    track = track_services.create_track(owner=owner, upload=SimpleUploadedFile(path.name, path.read_bytes()))
    wait(lambda: Track.objects.get(pk=track.pk).is_settled, timeout=120, poll=0.05)
    track.refresh_from_db()
    assert track.status == Track.Status.READY, track.failure_reason
    return track


def copy_says(track: Track, granted: bool) -> bool:
    return DistributionCopy.objects.filter(
        track=track, status=DistributionCopy.Status.CURRENT, embedded_granted=granted
    ).exists()


def measure_latency(changes: int, skip_large: bool) -> None:
    devcert.generate(Path(settings.PUBLIC_C2PA_CERT_CHAIN).parent)
    stamp = int(time.time())
    owner = User.objects.create_user(email=f"bench-public-{stamp}@example.test", display_name="Bench Artist")
    files = [FIXTURES / n for n in ("good.mp3", "good.wav", "good.flac", "good.m4a")]
    if not skip_large:
        files += make_large_files()
    worker = start_worker()
    try:
        print("| file | size | changes | median | p95 | max |")
        print("| --- | --- | --- | --- | --- | --- |")
        for path in files:
            track = upload(owner, path)
            services.set_track_public(actor=owner, track=track, public=True)
            wait(lambda track=track: copy_says(track, False), timeout=120)
            latencies = []
            granted = False
            for _ in range(changes):
                granted = not granted
                started = time.monotonic()
                set_third_party(owner, track, granted)  # commits; the rebuild is queued on commit
                wait(lambda track=track, granted=granted: copy_says(track, granted), timeout=120)
                latencies.append(time.monotonic() - started)
            latencies.sort()
            p95 = latencies[max(0, round(0.95 * len(latencies)) - 1)]
            print(
                f"| {path.name} | {path.stat().st_size / 1e6:.1f} MB | {len(latencies)} | "
                f"{statistics.median(latencies):.2f} s | {p95:.2f} s | {latencies[-1]:.2f} s |"
            )
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def measure_site_files(count: int) -> None:
    owner = User.objects.create_user(email=f"bench-files-{int(time.time())}@example.test", display_name="Bench Files")
    first = Track.objects.create(
        owner=owner, title="First", audio_file="audio/none.mp3", sha256="0" * 64, status=Track.Status.READY,
        container="MPEG audio",
    )  # fmt: skip
    set_third_party(owner, first, True)
    services.set_track_public(actor=owner, track=first, public=True)
    started = time.monotonic()
    copy_granted_public_track(first, count - 1)
    print(f"\n{count:,} granted public tracks made in {time.monotonic() - started:.1f} s\n")
    if connection.vendor == "postgresql":
        # What autovacuum does soon after a bulk load; without statistics the
        # planner cannot see that the LIMIT stops early.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print("| file | size | exceptions listed | all listed | first request | warm (median of 5) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, build in (("robots.txt", channels.robots_txt), ("ai.txt", channels.ai_txt),
                        ("tdmrep.json", channels.tdmrep_json)):  # fmt: skip
        timings = []
        for _ in range(6):
            started = time.monotonic()
            made = build()
            timings.append(time.monotonic() - started)
        print(
            f"| {name} | {made.size:,} bytes | {len(made.listed):,} | {made.complete} | "
            f"{timings[0] * 1000:.0f} ms | {statistics.median(timings[1:]) * 1000:.0f} ms |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()
    if not settings.REDIS_URL:
        sys.exit("Set REDIS_URL: the latency is measured with a real worker on a real broker.")
    try:
        measure_latency(args.changes, args.skip_large)
        measure_site_files(args.tracks)
    finally:
        shutil.rmtree(_workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
