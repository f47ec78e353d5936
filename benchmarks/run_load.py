"""Load test: simulated artists against two web processes, two workers and beat (Locust, headless).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/7 \\
        .venv/bin/python benchmarks/run_load.py [--users 200] [--run-time 120] [--spawn-rate 20]

Starts, all on this machine and all as separate processes: SeaweedFS (S3), an
SMTP sink (aiosmtpd), two gunicorn web processes (DJANGO_DEBUG=0, sync
workers) on two ports, two Celery workers and one beat, on a fresh PostgreSQL
database created next to the one DATABASE_URL names (dropped afterwards) and
the Redis database REDIS_URL names (its own queue). Seeds one artist per
simulated user (a session and two processed tracks each), runs
benchmarks/locustfile.py for the run time, then waits for the workers to
process every upload and send every notice, runs verify_audit_log, and prints
requests/s, p50/p95/p99 and errors per request kind as a Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.processes import CeleryBeat, CeleryWorker, SeaweedS3, Subprocess, WebServer, free_port, wait_for  # noqa: E402


def database_url_named(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def admin_connection(url: str):
    import psycopg

    parts = urlsplit(url)
    return psycopg.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password or None,
        dbname="postgres",
        autocommit=True,
    )


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


# --- seeding (runs in a child process with the load test's environment) ----------------------


def seed(*, artists: int, tracks: int, out: Path) -> None:
    import django

    django.setup()
    from allauth.account.models import EmailAddress
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.files.uploadedfile import SimpleUploadedFile

    from accounts.models import User
    from benchmarks.load_media import unique_wav
    from creatorportal.celery import app as celery_app
    from tracks import services

    # Seed tracks are processed in this process, so the run starts with an idle queue.
    celery_app.conf.task_always_eager = True
    seeded = []
    for n in range(artists):
        user = User.objects.create_user(email=f"load{n}@example.test", password=None, display_name=f"Load {n}")
        EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        uuids = [
            str(services.create_track(owner=user, upload=SimpleUploadedFile(f"seed{i}.wav", unique_wav())).uuid)
            for i in range(tracks)
        ]
        seeded.append({"session": session.session_key, "tracks": uuids})
    out.write_text(json.dumps(seeded))


# --- the run ----------------------------------------------------------------------------------


def roles(webs, workers, store) -> dict[str, list[int]]:
    return {"web": [w.pid for w in webs], "workers": [w.pid for w in workers], "SeaweedFS": [store.pid]}


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes and their children (gunicorn's workers)."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            parent = psutil.Process(pid)
            for process in [parent, *parent.children(recursive=True)]:
                times = process.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def outcome(env: dict[str, str]) -> dict:
    """What the workers made of the load: run in a child process on the load database."""
    script = (
        "import django, json; django.setup()\n"
        "from tracks.models import Track; from notifications.models import Notification\n"
        "print(json.dumps({'tracks': Track.objects.count(),"
        " 'unsettled': Track.objects.filter(status='processing').count(),"
        " 'failed': Track.objects.filter(status='failed').count(),"
        " 'notices': Notification.objects.count(),"
        " 'unsent': Notification.objects.exclude(status='sent').count()}))"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarise(stats_csv: Path, run_time: float) -> str:
    rows = list(csv.DictReader(stats_csv.open()))
    lines = [
        "| request | requests | requests/s | p50 ms | p95 ms | p99 ms | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        name = "**all requests**" if row["Name"] == "Aggregated" else row["Name"]
        lines.append(
            f"| {name} | {row['Request Count']} | {float(row['Requests/s']):.1f} | {row['50%']} | {row['95%']} "
            f"| {row['99%']} | {row['Failure Count']} |"
        )
    return "\n".join(lines)


def run(args) -> int:
    base_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if not base_url.startswith(("postgres://", "postgresql://")) or not redis_url:
        sys.exit("Set DATABASE_URL (postgres://…, any database on the server) and REDIS_URL.")
    workdir = Path(tempfile.mkdtemp(prefix="portal-load-"))
    db_name = f"portal_load_{os.getpid()}"
    processes: list[Subprocess] = []
    with admin_connection(base_url) as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')
    try:
        store = SeaweedS3(workdir / "weed")
        processes.append(store)
        store.wait_ready()
        store.create_bucket("media")
        smtp_port = free_port()
        sink = Subprocess(
            # -I: the repository (the working directory) is not on the path, or the app `public` would hide
            # the module of that name that aiosmtpd imports.
            [
                sys.executable,
                "-I",
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                f"127.0.0.1:{smtp_port}",
                "-c",
                "aiosmtpd.handlers.Sink",
            ],
            env=dict(os.environ),
            log_path=workdir / "smtp.log",
        )
        processes.append(sink)
        env = {
            **os.environ,
            **store.env("media"),
            "DJANGO_SETTINGS_MODULE": "creatorportal.settings",
            "DATABASE_URL": database_url_named(base_url, db_name),
            "DATABASE_CONN_MAX_AGE": "60",
            "REDIS_URL": redis_url,
            "CELERY_QUEUE": f"portal-load-{os.getpid()}",
            "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "SITE_URL": "http://127.0.0.1",
            "STATIC_ROOT": str(workdir / "static"),
            "PORTAL_VAR_DIR": str(workdir / "var"),
            "LOG_LEVEL": "WARNING",
            # No track is made public during the load, so no copy is signed; production settings still
            # insist on naming the C2PA chain and key.
            "PUBLIC_C2PA_CERT_CHAIN": os.environ.get("PUBLIC_C2PA_CERT_CHAIN", "/nonexistent/load-chain.pem"),
            "PUBLIC_C2PA_PRIVATE_KEY": os.environ.get("PUBLIC_C2PA_PRIVATE_KEY", "/nonexistent/load-key.pem"),
        }
        (workdir / "var").mkdir()
        print(f"migrating {db_name}, collecting static files, seeding {args.users} artists…", flush=True)
        manage(env, "migrate", "--noinput")
        manage(env, "collectstatic", "--noinput")
        seed_file = workdir / "seed.json"
        subprocess.run(
            [sys.executable, __file__, "seed", "--artists", str(args.users), "--out", str(seed_file)],
            cwd=ROOT,
            env=env,
            check=True,
        )

        webs = [WebServer(env=env, log_path=workdir / f"web-{n}.log", workers=args.web_workers) for n in (1, 2)]
        workers = [
            CeleryWorker(
                env={**env, "LOG_LEVEL": "INFO"},
                log_path=workdir / f"worker-{n}.log",
                queue=env["CELERY_QUEUE"],
                node=f"load-{os.getpid()}-{n}",
            )
            for n in (1, 2)
        ]
        beat = CeleryBeat(env=env, log_path=workdir / "beat.log", schedule_dir=workdir / "var")
        processes.extend([*webs, *workers, beat])
        # Booting six Django processes at once on a busy 2-core machine takes a while.
        for process in (*webs, *workers, beat):
            process.wait_ready(timeout=300)

        cpu_before = {role: cpu_seconds(group) for role, group in roles(webs, workers, store).items()}
        load_before = os.getloadavg()
        print(
            f"running Locust: {args.users} artists (think time {args.think} s) for {args.run_time} s "
            f"against {[w.url for w in webs]}",
            flush=True,
        )
        started = time.monotonic()
        command = [
            sys.executable, "-m", "locust", "-f", str(ROOT / "benchmarks" / "locustfile.py"), "--headless",
            "--users", str(args.users), "--spawn-rate", str(args.spawn_rate), "--run-time", f"{args.run_time}s",
            "--csv", str(workdir / "locust"), "--only-summary", "--stop-timeout", "10", "--host", webs[0].url,
        ]  # fmt: skip
        hosts = ",".join(web.url for web in webs)
        locust = subprocess.run(
            command,
            cwd=ROOT,
            env={
                **env,
                "PORTAL_LOAD_HOSTS": hosts,
                "PORTAL_LOAD_SEED": str(seed_file),
                "PORTAL_LOAD_THINK": args.think,
            },
            capture_output=True,
            text=True,
        )
        elapsed = time.monotonic() - started
        (workdir / "locust.out").write_text(locust.stdout + locust.stderr)
        load_after = os.getloadavg()
        cpu_used = {role: cpu_seconds(group) - cpu_before[role] for role, group in roles(webs, workers, store).items()}

        # The latencies first: they stand whatever the workers do afterwards.
        print()
        print(summarise(workdir / "locust_stats.csv", elapsed))
        print()
        try:
            wait_for(
                lambda: (o := outcome(env))["unsettled"] == 0 and o["unsent"] == 0,
                timeout=180,
                interval=2,
                message="the workers to process every upload and send every notice",
            )
        finally:
            print(f"work left after the run: {outcome(env)}", flush=True)
        result = outcome(env)
        verify = subprocess.run(
            [sys.executable, "manage.py", "verify_audit_log"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        print(
            f"Locust ran {elapsed:.0f} s (exit {locust.returncode}); load average before {load_before[0]:.1f}, "
            f"after {load_after[0]:.1f} (2 cores, shared)."
        )
        print(
            f"After the run: {result['tracks']} tracks, {result['failed']} failed processing, "
            f"{result['notices']} notices all sent; verify_audit_log: {(verify.stdout or verify.stderr).strip()}"
        )
        requests_served = sum(
            int(row["Request Count"])
            for row in csv.DictReader((workdir / "locust_stats.csv").open())
            if row["Name"] == "Aggregated"
        )
        print(
            "CPU used during the run: "
            + ", ".join(f"{role} {seconds:.1f} s" for role, seconds in cpu_used.items())
            + f"; web CPU per request {1000 * cpu_used['web'] / max(requests_served, 1):.0f} ms."
        )
        print(f"logs: {workdir}")
        return 0 if locust.returncode == 0 and verify.returncode == 0 else 1
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.stop()
        with admin_connection(base_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    seeding = sub.add_parser("seed", help="(internal) seed artists into the database in the environment")
    seeding.add_argument("--artists", type=int, required=True)
    seeding.add_argument("--tracks", type=int, default=2)
    seeding.add_argument("--out", type=Path, required=True)
    parser.add_argument("--users", type=int, default=200, help="simulated artists (default 200)")
    parser.add_argument("--spawn-rate", type=float, default=20, help="artists started per second (default 20)")
    parser.add_argument("--run-time", type=int, default=120, help="seconds of load (default 120)")
    parser.add_argument("--think", default="2,6", help="seconds an artist waits between actions, min,max (default 2,6)")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers per web process (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the logs and Locust's CSV files")
    args = parser.parse_args()
    if args.command == "seed":
        seed(artists=args.artists, tracks=args.tracks, out=args.out)
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
