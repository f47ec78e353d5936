"""Fixtures shared by every app's tests.

Tests that need a real service (PostgreSQL, Redis, a browser, SMTP) ask for it
through a fixture here. Locally a missing service skips the test; with
PORTAL_REQUIRE_SERVICES=1 (set by .ci/run) it fails instead, so CI can never
pass by skipping.
"""

from __future__ import annotations

import itertools
import os

import pytest

from creatorportal.celery import app as celery_app
from tests.processes import free_port

# The audit log's append-only triggers must be lifted for the flush that follows
# every transactional test, in every app; consent.testing does exactly that.
pytest_plugins = ["consent.testing", "downstream.testing"]

REQUIRE_SERVICES = os.environ.get("PORTAL_REQUIRE_SERVICES", "") in {"1", "true", "yes"}

_sequence = itertools.count(1)


def service_missing(reason: str) -> None:
    """Skip locally, fail in CI, when a service a test is about is not there."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    """Each test writes media into its own folder, so stray files can be checked."""
    media = tmp_path / "media"
    media.mkdir()
    settings.MEDIA_ROOT = media
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(media)}},
    }
    return media


@pytest.fixture
def media(_isolated_media):
    """The test's own media folder, where default storage writes."""
    return _isolated_media


@pytest.fixture(autouse=True)
def _eager_celery_by_default(request):
    """Unit tests run tasks in-process; tests marked real_worker use a real worker."""
    if request.node.get_closest_marker("real_worker"):
        yield
        return
    previous = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous


@pytest.fixture(autouse=True)
def _isolated_audit_checkpoints(settings, tmp_path):
    """Each test has its own checkpoint directory and signing key: checkpoints belong to one database."""
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "audit-checkpoints"
    settings.AUDIT_CHECKPOINT_KEY_FILE = tmp_path / "keys" / "audit-checkpoint-key.pem"
    settings.AUDIT_CHECKPOINT_CREATE_KEY = True
    settings.AUDIT_CHECKPOINT_TRUSTED_KEYS = []
    return settings.AUDIT_CHECKPOINT_DIR


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Real hashing costs most of a second per user; no test here is about it.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _clear_cache():
    # allauth's rate limits live in the cache; one test's failures must not
    # throttle the next test.
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def invalid_receipts(settings, monkeypatch):
    """Every consent receipt a test builds is checked against the published schema.

    The builder refuses a mismatch under test; the refusal is also recorded
    here, so a receipt built where exceptions are caught (an email rendered by
    the delivery task) still fails the test that produced it. A test about an
    invalid receipt asserts on this list and empties it.
    """
    from consent import receipts

    settings.CONSENT_RECEIPT_VALIDATION = "raise"
    seen: list[tuple[str | None, list[str]]] = []
    original = receipts._invalid_receipt

    def record(receipt: dict, problems: list[str]) -> None:
        seen.append((receipt.get("receipt_id"), problems))
        original(receipt, problems)

    monkeypatch.setattr(receipts, "_invalid_receipt", record)
    yield seen
    if seen:
        pytest.fail(f"the test produced consent receipts that do not match their schema: {seen}", pytrace=False)


@pytest.fixture
def password() -> str:
    from tests.factories import TEST_PASSWORD

    return TEST_PASSWORD


@pytest.fixture
def make_user(db, password):
    """Create a user whose email is verified (so allauth lets them sign in)."""
    from accounts.models import User
    from tests.factories import UserFactory

    def make(*, email: str | None = None, display_name: str | None = None, verified: bool = True, **extra) -> User:
        given = {"email": email, "display_name": display_name}
        user: User = UserFactory.create(
            password=password, verified=verified, **{k: v for k, v in given.items() if v}, **extra
        )
        return user

    return make


@pytest.fixture
def make_track(db):
    """Create a Track row directly: tests that are not about uploads skip the pipeline."""
    from tests.factories import TrackFactory

    return TrackFactory


@pytest.fixture
def make_tracks(db):
    """Many tracks for one owner in one INSERT."""
    from tests.factories import TrackFactory
    from tracks.models import Track

    def make(count: int, *, owner, isrc_prefix: str | None = None, **fields) -> list[Track]:
        rows = TrackFactory.build_batch(count, owner=owner, **fields)
        for i, track in enumerate(rows):
            track.isrc = f"{isrc_prefix}{i:07d}" if isrc_prefix else ""
        return Track.objects.bulk_create(rows)

    return make


@pytest.fixture
def purposes(db):
    """Every purpose by slug, read from the database."""
    from consent.models import Purpose

    return {p.slug: p for p in Purpose.objects.all()}


@pytest.fixture
def all_none(db) -> dict[str, str]:
    """Every purpose, read from the database so that a new one is covered too, delegated as nothing."""
    from consent.models import Purpose

    return dict.fromkeys(Purpose.objects.values_list("slug", flat=True), "none")


@pytest.fixture
def purpose_slugs(db) -> list[str]:
    """Every purpose's slug in the order pages and CSV columns show them."""
    from consent.models import Purpose

    return list(Purpose.objects.order_by("ordering", "id").values_list("slug", flat=True))


@pytest.fixture
def artist(make_user):
    return make_user(display_name="Ada Artist")


@pytest.fixture
def other_artist(make_user):
    return make_user(display_name="Otto Other")


@pytest.fixture
def staff_user(make_user):
    return make_user(display_name="Sam Staff", is_staff=True, is_superuser=True)


@pytest.fixture
def artist_client(client, artist):
    client.force_login(artist)
    return client


@pytest.fixture
def staff_client(client, staff_user):
    """The test client signed in as staff (the admin)."""
    client.force_login(staff_user)
    return client


@pytest.fixture
def new_policy_version(db):
    """Factory: an unpublished policy version numbered after every existing one.

    Data migrations announce new purposes through versions of their own, so a
    test never assumes which number comes next.
    """
    from consent.models import PolicyVersion

    def make(**fields) -> PolicyVersion:
        latest = PolicyVersion.objects.order_by("-version").first()
        fields.setdefault("summary", "New terms.")
        fields.setdefault("full_text", "New terms.")
        fields.setdefault("is_material", True)
        return PolicyVersion.objects.create(version=(latest.version if latest else 0) + 1, **fields)

    return make


# --- A real Celery worker process -------------------------------------------------------


def _database_url_for_subprocess() -> str:
    """The URL of the database this test is using (the test database)."""
    from django.db import connection

    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings_dict['NAME']}"
    if connection.vendor == "postgresql":
        user = settings_dict.get("USER") or ""
        password = settings_dict.get("PASSWORD") or ""
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = settings_dict.get("PORT") or 5432
        return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"
    raise RuntimeError(f"no subprocess URL for database vendor {connection.vendor}")


# One queue per test session, so a test worker never takes a task meant for a
# development worker running against the same broker, or the reverse.
TEST_QUEUE = f"portal-test-{os.getpid()}"


@pytest.fixture
def start_celery_worker(request, transactional_db, settings, tmp_path):
    """Factory: start real worker processes; all are stopped after the test.

    Needs @pytest.mark.real_worker (so the test process enqueues to the broker
    instead of running tasks in-process). `pool` and `concurrency` are the
    worker's (solo unless told); other keyword arguments become environment
    variables of the worker, for example EMAIL_URL or REDIS_URL.
    """
    if not request.node.get_closest_marker("real_worker"):
        raise RuntimeError("tests using a real worker must be marked @pytest.mark.real_worker")
    from tests.processes import CeleryWorker

    workers: list[CeleryWorker] = []
    previous_queue = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = TEST_QUEUE

    def start(*, pool: str = "solo", concurrency: int = 1, **extra_env: str) -> CeleryWorker:
        env = {
            **os.environ,
            "DATABASE_URL": _database_url_for_subprocess(),
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "DJANGO_SETTINGS_MODULE": "creatorportal.settings",
            # Tasks the worker itself sends (retries, fan-outs) stay on the test queue.
            "CELERY_QUEUE": TEST_QUEUE,
            # As in the test process: a receipt that breaks its schema is refused and logged.
            "CONSENT_RECEIPT_VALIDATION": "raise",
            **{key: str(value) for key, value in extra_env.items()},
        }
        worker = CeleryWorker(
            env=env,
            log_path=tmp_path / f"worker-{len(workers) + 1}.log",
            queue=TEST_QUEUE,
            node=f"{TEST_QUEUE}-{next(_sequence)}",
            pool=pool,
            concurrency=concurrency,
        )
        workers.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in workers:
        worker.stop()
    celery_app.conf.task_default_queue = previous_queue
    invalid = [w.log_path.name for w in workers if "does not match its schema" in w.log()]
    if invalid:
        pytest.fail(f"a worker built consent receipts that do not match their schema: see {invalid}", pytrace=False)


@pytest.fixture
def celery_worker_process(start_celery_worker):
    """One real worker with the test's settings."""
    return start_celery_worker()


# --- A real browser ------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def _chromium():
    import shutil

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if not executable:
        service_missing("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread for as long as
    # the browser lives; tests still use the ORM synchronously, which Django
    # would otherwise refuse.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()
        # Each sync call leaves Playwright's event loop marked as running in this thread, and while it is,
        # Django (through asgiref's Local) keeps this thread's database connections apart from those opened
        # before the browser started. Close them while they are still the current ones: the test database's
        # teardown, which runs after this, would find one of them open.
        from django.db import connections

        connections.close_all()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def browser_page(request, _chromium, live_server):
    """A fresh browser context and page; a screenshot is saved if the test fails."""
    from pathlib import Path

    context = _chromium.new_context(base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        artifacts = Path(__file__).parent / "test-artifacts"
        artifacts.mkdir(exist_ok=True)
        page.screenshot(path=str(artifacts / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.fixture
def page_errors(browser_page) -> list[str]:
    """Uncaught JavaScript errors and console errors of browser_page, as they happen."""
    errors: list[str] = []
    browser_page.on("pageerror", lambda exc: errors.append(str(exc)))

    def console(message) -> None:
        if message.type == "error":
            errors.append(message.text)

    browser_page.on("console", console)
    return errors


@pytest.fixture
def sign_in_browser(client, live_server):
    """Sign a user in to a browser context with the test client's session cookie."""

    def sign_in(page_or_context, user) -> None:
        client.force_login(user)
        context = getattr(page_or_context, "context", page_or_context)
        context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])

    return sign_in


# --- A real SMTP server --------------------------------------------------------------------


def _aiosmtpd_controller():
    """aiosmtpd's Controller, imported with the module `public` it needs (PyPI atpublic) in place.

    This project's app public/ has the same import name and comes first on
    sys.path, so the import runs once with the repository left off the path and
    the app taken out of sys.modules, and both are put back right after.
    """
    import sys
    from pathlib import Path

    if "aiosmtpd.controller" not in sys.modules:
        root = Path(__file__).resolve().parent
        saved_path, app = sys.path[:], sys.modules.pop("public", None)
        sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != root]
        try:
            import aiosmtpd.controller  # noqa: F401
        finally:
            sys.path[:] = saved_path
            sys.modules.pop("public", None)
            if app is not None:
                sys.modules["public"] = app
    return sys.modules["aiosmtpd.controller"].Controller


class SmtpSink:
    """An aiosmtpd server in a thread that keeps what it receives.

    `refuse_next(n)` makes it answer the next n messages with a temporary
    failure (451), as a mail server under load or in maintenance does;
    `slow_down(seconds)` makes it take that long to accept each message.
    """

    def __init__(self):
        import email
        import email.policy
        import threading

        Controller = _aiosmtpd_controller()

        self._email = email
        self._policy = email.policy.default
        self._lock = threading.Lock()
        self.messages: list = []
        self.refusals_left = 0
        self.refused = 0
        self.delay = 0.0
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            import asyncio

            await asyncio.sleep(self.delay)
        with self._lock:
            if self.refusals_left > 0:
                self.refusals_left -= 1
                self.refused += 1
                return "451 4.3.0 Temporarily unable to accept mail, try again later"
            self.messages.append(self._email.message_from_bytes(envelope.content, policy=self._policy))
        return "250 2.0.0 OK"

    def refuse_next(self, count: int) -> None:
        with self._lock:
            self.refusals_left = count

    def slow_down(self, seconds: float) -> None:
        self.delay = seconds

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def message_ids(self) -> list[str]:
        with self._lock:
            return [message["Message-ID"] for message in self.messages]

    def to(self, address: str) -> list:
        with self._lock:
            return [message for message in self.messages if message["To"] == address]


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server on a free port; Django's default mailer points at it."""
    sink = SmtpSink()
    sink.controller.start()
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": sink.port, "timeout": 5},
        }
    }
    yield sink
    sink.controller.stop()


# --- A throwaway Redis, to stop and start at will --------------------------------------------


class ThrowawayRedis:
    """A redis-server of our own on a free port; stopping it never touches the shared one."""

    def __init__(self, tmp_path):
        import shutil

        self.binary = shutil.which("redis-server")
        if not self.binary:
            service_missing("redis-server is not installed")
        self.port = free_port()
        self.dir = tmp_path
        self.process = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        import subprocess

        import redis

        from tests.utils import wait_until

        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url)
        wait_until(lambda: _pings(client), timeout=10, message="throwaway redis to answer")

    def stop(self):
        """Stop this server by its pid (SIGTERM): everything in it is gone, as after a crash."""
        if self.process and self.process.poll() is None:
            self.resume()
            self.process.terminate()
            self.process.wait(timeout=10)

    def hang(self):
        """SIGSTOP by pid: connections stay open and nothing answers, as with a hung server or a dead link."""
        import signal

        self.process.send_signal(signal.SIGSTOP)

    def resume(self):
        import signal

        self.process.send_signal(signal.SIGCONT)


def _pings(client) -> bool:
    try:
        return client.ping()
    except Exception:
        return False


@pytest.fixture
def throwaway_redis(tmp_path):
    from platformkit.outage import forget_outages

    server = ThrowawayRedis(tmp_path)
    server.start()
    forget_outages()
    yield server
    server.stop()
    forget_outages()


def _drop_broker_connections():
    # Cached connections and producers still point at the previous broker;
    # forget them as Celery does in a forked child.
    celery_app._after_fork()


@pytest.fixture
def broker(throwaway_redis):
    """Point this test process's Celery producer at the throwaway Redis."""
    previous = celery_app.conf.broker_url
    celery_app.conf.broker_url = throwaway_redis.url
    _drop_broker_connections()
    yield throwaway_redis
    celery_app.conf.broker_url = previous
    _drop_broker_connections()


@pytest.fixture
def redis_cache(throwaway_redis, settings):
    """Point Django's cache at the throwaway Redis, with the backend and options the settings configure."""
    configured = settings.CACHES["default"]
    if "redis" not in configured["BACKEND"].lower():
        service_missing("REDIS_URL is not set: the cache is not Redis")
    settings.CACHES = {"default": {**configured, "LOCATION": throwaway_redis.url}}
    yield throwaway_redis


# --- A real S3-compatible object store (SeaweedFS) -------------------------------------------


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory):
    """One SeaweedFS server (master, volume, filer, S3 gateway) for the test session."""
    from tests.processes import SeaweedS3, ServiceMissing

    try:
        server = SeaweedS3(tmp_path_factory.mktemp("seaweedfs"))
    except ServiceMissing as missing:
        service_missing(str(missing))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


class S3Media:
    """A fresh bucket on the test SeaweedFS, set as the portal's media storage."""

    def __init__(self, server, bucket: str):
        self.server = server
        self.bucket = bucket
        self.client = server.client()

    @property
    def env(self) -> dict[str, str]:
        return self.server.env(self.bucket)

    def keys(self) -> list[str]:
        """Every object in the bucket, sorted."""
        paginator = self.client.get_paginator("list_objects_v2")
        return sorted(
            item["Key"] for page in paginator.paginate(Bucket=self.bucket) for item in page.get("Contents", [])
        )

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def empty(self) -> None:
        for key in self.keys():
            self.client.delete_object(Bucket=self.bucket, Key=key)


@pytest.fixture
def s3_media(seaweedfs, settings):
    """Media on S3 (SeaweedFS) for this test, configured the way settings.py does for STORAGE_BACKEND=s3."""
    import uuid

    from creatorportal.settings import s3_media_storage

    bucket = f"media-{uuid.uuid4().hex[:16]}"
    media = S3Media(seaweedfs, bucket)
    media.client.create_bucket(Bucket=bucket)
    env = seaweedfs.env(bucket)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": s3_media_storage(
            bucket=bucket,
            endpoint_url=env["STORAGE_S3_ENDPOINT_URL"],
            region=env["STORAGE_S3_REGION"],
            access_key=env["STORAGE_S3_ACCESS_KEY_ID"],
            secret_key=env["STORAGE_S3_SECRET_ACCESS_KEY"],
            url_expire_seconds=300,
            addressing_style=env["STORAGE_S3_ADDRESSING_STYLE"],
        ),
    }
    yield media
    media.empty()
    media.client.delete_bucket(Bucket=bucket)


# --- The portal as several processes (web, beat) -----------------------------------------------


def _portal_subprocess_env(settings, var_dir, **extra_env: str) -> dict[str, str]:
    """Environment for a portal process on this test's database, broker queue and media."""
    var_dir.mkdir(exist_ok=True)
    return {
        **os.environ,
        "DATABASE_URL": _database_url_for_subprocess(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "DJANGO_SETTINGS_MODULE": "creatorportal.settings",
        "CELERY_QUEUE": TEST_QUEUE,
        "PORTAL_VAR_DIR": str(var_dir),
        **{key: str(value) for key, value in extra_env.items()},
    }


@pytest.fixture
def start_web_server(transactional_db, settings, tmp_path):
    """Factory: gunicorn processes serving the portal on the test database; stopped by pid after the test.

    Keyword arguments become environment variables of the server. Tasks the
    server enqueues go to this session's test queue. With wait=False the caller
    calls wait_ready() itself, so that several processes can boot at once.
    """
    from tests.processes import WebServer

    servers: list[WebServer] = []

    def start(*, workers: int = 2, threads: int = 1, wait: bool = True, **extra_env: str) -> WebServer:
        env = _portal_subprocess_env(settings, tmp_path / "var", **extra_env)
        server = WebServer(env=env, log_path=tmp_path / f"web-{len(servers) + 1}.log", workers=workers, threads=threads)
        servers.append(server)
        if wait:
            server.wait_ready()
        return server

    yield start
    for server in servers:
        server.terminate()
    for server in servers:
        server.stop()


@pytest.fixture
def start_celery_beat(transactional_db, settings, tmp_path):
    """Factory: the one celery beat, sending to this session's test queue; stopped by pid after the test."""
    from tests.processes import CeleryBeat

    beats: list[CeleryBeat] = []

    def start(*, wait: bool = True, **extra_env: str) -> CeleryBeat:
        env = _portal_subprocess_env(settings, tmp_path / "var", **extra_env)
        beat = CeleryBeat(env=env, log_path=tmp_path / "beat.log", schedule_dir=tmp_path / "var")
        beats.append(beat)
        if wait:
            beat.wait_ready()
        return beat

    yield start
    for beat in beats:
        beat.stop()
