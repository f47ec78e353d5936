"""Benchmark of track uploads: header-only validation, and flat memory under a big upload.

    .venv/bin/python benchmarks/bench_upload.py [--keep WORKDIR]

Reports, for the same format at about 1 MB and 200 MB (WAV, FLAC and MP3),
how long tracks.metadata takes to validate the file and how many bytes it
reads; then the peak memory of a fresh process while a 300 MB upload goes
through the real upload view (full middleware stack, a multipart body streamed
from disk as a WSGI server would), once accepted and once over the size limit.

Everything runs against a throw-away SQLite database and media folder in a
temporary directory; nothing in the repository's var/ is touched. Needs sox and
ffmpeg to make the audio.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


def configure(workdir: Path, **env: str) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "creatorportal.settings",
            "PORTAL_VAR_DIR": str(workdir / "var"),
            "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
            "MEDIA_ROOT": str(workdir / "media"),
            "FILE_UPLOAD_TEMP_DIR": str(workdir / "tmp"),
            "LOG_LEVEL": "WARNING",
            **env,
        }
    )
    (workdir / "tmp").mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


# --- making audio of a given size ------------------------------------------------------------


def run(*command: str) -> None:
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_audio(workdir: Path, kind: str, target_bytes: int) -> Path:
    """A real, valid file of roughly target_bytes (noise, so it does not compress away)."""
    path = workdir / f"{kind}-{target_bytes // MB}mb.{kind}"
    if path.exists():
        return path
    if kind == "wav":
        seconds = target_bytes / (44_100 * 2 * 2)
        run("sox", "-n", "-r", "44100", "-c", "2", "-b", "16", str(path), "synth", f"{seconds:.2f}", "whitenoise")
    elif kind == "flac":
        seconds = target_bytes / (44_100 * 2 * 2 * 0.548)  # sox's white noise packs to about 55 %
        run("sox", "-n", "-r", "44100", "-c", "2", "-b", "16", str(path), "synth", f"{seconds:.2f}", "whitenoise")
    elif kind == "mp3":
        seconds = target_bytes * 8 / 320_000
        run(
            "ffmpeg", "-hide_banner", "-y", "-f", "lavfi", "-i", f"anoisesrc=d={seconds:.2f}:r=44100",
            "-ac", "2", "-c:a", "libmp3lame", "-b:a", "320k", str(path),
        )  # fmt: skip
    else:
        raise ValueError(kind)
    return path


def make_silent_wav(path: Path, target_bytes: int) -> Path:
    """A valid PCM WAV of exactly target_bytes, written in chunks (no sox needed for the big one)."""
    import struct

    data_bytes = target_bytes - 44
    header = b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 2, 44_100, 44_100 * 4, 4, 16)
    header += b"data" + struct.pack("<I", data_bytes)
    chunk = bytes(MB)
    with open(path, "wb") as fh:
        fh.write(header)
        remaining = data_bytes
        while remaining:
            fh.write(chunk[: min(MB, remaining)])
            remaining -= min(MB, remaining)
    return path


def drop_from_page_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


# --- validation ------------------------------------------------------------------------------


def bench_validation(workdir: Path) -> list[dict]:
    from tracks import metadata

    rows = []
    for kind in ("wav", "flac", "mp3"):
        for size in (1 * MB, 200 * MB):
            path = make_audio(workdir, kind, size)
            timings = []
            for _ in range(5):
                drop_from_page_cache(path)
                with open(path, "rb") as fh:
                    reader = metadata.CountingReader(fh)
                    started = time.perf_counter()
                    info = metadata.probe(reader)
                    timings.append(time.perf_counter() - started)
            rows.append(
                {
                    "format": info.format.label,
                    "file_mb": round(path.stat().st_size / MB, 1),
                    "duration_s": round(info.duration_seconds),
                    "bytes_read": reader.bytes_read,
                    "median_ms": round(sorted(timings)[len(timings) // 2] * 1000, 2),
                }
            )
    return rows


# --- memory under a real upload --------------------------------------------------------------


def multipart_body(path: Path, source: Path, *, csrf: str, boundary: str) -> int:
    """Write a multipart/form-data body to disk, copying the file in chunks; return its length."""
    with open(path, "wb") as out, open(source, "rb") as src:
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrfmiddlewaretoken"\r\n\r\n{csrf}\r\n'.encode()
        )
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{source.name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
        )
        shutil.copyfileobj(src, out, MB)
        out.write(f"\r\n--{boundary}--\r\n".encode())
    return path.stat().st_size


def measure_upload(workdir: Path, source: Path) -> dict:
    """Runs in a fresh process: push one upload through the WSGI handler and report memory."""
    import tracemalloc

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application

    from creatorportal.celery import app as celery_app

    celery_app.conf.task_always_eager = True  # process in this process too, no broker needed
    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user(email=f"bench{time.time_ns()}@example.test", password=None)
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.create()

    csrf = "b" * 32
    boundary = "----benchboundary7MA4YWxkTrZu0gW"
    body_path = workdir / f"body-{source.stem}.bin"
    length = multipart_body(body_path, source, csrf=csrf, boundary=boundary)
    application = get_wsgi_application()
    status_holder = {}

    def start_response(status, headers, exc_info=None):
        status_holder["status"] = status

    rss_before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    started = time.perf_counter()
    with open(body_path, "rb") as body:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/tracks/upload/",
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "80",
            "HTTP_HOST": "localhost",
            "wsgi.url_scheme": "http",
            "wsgi.input": body,
            "CONTENT_TYPE": f"multipart/form-data; boundary={boundary}",
            "CONTENT_LENGTH": str(length),
            "HTTP_ACCEPT": "application/json",
            "HTTP_COOKIE": f"{settings.SESSION_COOKIE_NAME}={session.session_key}; {settings.CSRF_COOKIE_NAME}={csrf}",
        }
        response = application(environ, start_response)
        content = b"".join(response)
        response.close()
    elapsed = time.perf_counter() - started
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    body_path.unlink()
    result = json.loads(content)["results"][0]
    return {
        "upload_mb": round(source.stat().st_size / MB, 1),
        "limit_mb": round(settings.TRACKS_MAX_UPLOAD_BYTES / MB),
        "http_status": status_holder["status"],
        "outcome": "accepted" if result["ok"] else f"refused ({result['code']})",
        "seconds": round(elapsed, 2),
        "rss_before_mb": round(rss_before_kb / 1024, 1),
        "rss_peak_mb": round(rss_after_kb / 1024, 1),
        "rss_growth_mb": round((rss_after_kb - rss_before_kb) / 1024, 1),
        "python_alloc_peak_mb": round(traced_peak / MB, 2),
    }


def bench_memory(workdir: Path) -> list[dict]:
    source = make_silent_wav(workdir / "upload-300mb.wav", 300 * MB)
    rows = []
    for limit in (400 * MB, 200 * MB):
        output = subprocess.run(
            [sys.executable, __file__, "--measure-upload", str(source), "--workdir", str(workdir)],
            env={**os.environ, "TRACKS_MAX_UPLOAD_BYTES": str(limit)},
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
        shutil.rmtree(workdir / "media", ignore_errors=True)
        (workdir / "bench.sqlite3").unlink(missing_ok=True)
    return rows


def table(rows: list[dict]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(row[k]) for k in keys) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", metavar="WORKDIR", help="reuse and keep this folder (generated audio is cached)")
    parser.add_argument("--measure-upload", metavar="FILE", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.measure_upload:
        workdir = Path(args.workdir)
        configure(workdir)
        print(json.dumps(measure_upload(workdir, Path(args.measure_upload))))
        return

    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-upload-"))
    workdir.mkdir(parents=True, exist_ok=True)
    configure(workdir)
    try:
        print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")
        print("Validation (tracks.metadata.probe, cold page cache, median of 5):\n")
        print(table(bench_validation(workdir)))
        print("\nA 300 MB upload through the upload view, measured in a fresh process:\n")
        print(table(bench_memory(workdir)))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
