"""Demo data and screenshots of the artist's pages (docs/screenshots/).

    DJANGO_DEBUG=1 DATABASE_URL=... .venv/bin/python scripts/screenshots.py seed
    .venv/bin/python manage.py runserver 127.0.0.1:8765 &
    DATABASE_URL=... .venv/bin/python scripts/screenshots.py shoot http://127.0.0.1:8765 after

`seed` fills a development database with one artist, a label and a history
(grants by the artist and by the label, a withdrawal, a policy lapse, a
proposal waiting); it refuses to run twice on the same artist. `shoot` signs
in as that artist and saves the dashboard and the consent matrix at 1280 and
390 px as palette PNGs (small enough to commit).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatorportal.settings")

ARTIST_EMAIL = "demo-artist@localhost"
MANAGER_EMAIL = "demo-manager@localhost"
TITLES = [
    "Harbour Lights",
    "Salt and Iron",
    "Northbound",
    "Paper Moons",
    "Glasshouse",
    "Low Tide",
    "The Long Field",
    "Copper Wire",
    "Night Ferry",
    "Winter Orchard",
    "Signal Fires",
    "Afterglow",
]
PAGES = {"dashboard": "/dashboard/", "matrix": "/consent/"}
WIDTHS = {1280: 800, 390: 844}


def seed() -> None:
    import hashlib
    from datetime import timedelta

    import django

    django.setup()
    from allauth.account.models import EmailAddress
    from django.utils import timezone

    from accounts.models import Delegation, User
    from consent import services
    from consent.models import AuditEvent, PolicyVersion, Purpose
    from consent.policy import publish_policy_version
    from labels import services as label_services
    from tracks.models import Track

    if User.objects.filter(email=ARTIST_EMAIL).exists():
        raise SystemExit(f"{ARTIST_EMAIL} exists already; use a fresh database.")
    artist = User.objects.create_user(email=ARTIST_EMAIL, password="demo-password", display_name="Rosa Demo")
    manager = User.objects.create_user(email=MANAGER_EMAIL, password="demo-password", display_name="Mia Manager")
    for user in (artist, manager):
        EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    tracks = Track.objects.bulk_create(
        Track(
            owner=artist,
            title=title,
            isrc=f"GBDEM26{n:05d}",
            audio_file=f"audio/demo-{n}.flac",
            sha256=hashlib.sha256(f"demo-{n}".encode()).hexdigest(),
            container="FLAC",
            codec="FLAC",
            duration_seconds=180 + n,
            status=Track.Status.READY,
        )
        for n, title in enumerate(TITLES)
    )
    ids = [t.pk for t in tracks]
    slug = Purpose.objects.values_list("slug", flat=True)
    assert "generative_training" in slug

    def change(actor, pks, changes, **extra):
        services.change_consent(
            actor=actor,
            tracks=Track.objects.filter(pk__in=pks),
            changes=changes,
            source=extra.pop("source", AuditEvent.Source.WEB),
            **extra,
        )

    change(artist, ids[:8], {"recommendation": True})
    change(artist, ids[:3], {"generative_training": True}, confirmed_purposes={"generative_training"})
    label = label_services.create_label(owner=manager, name="Northern Records")
    Delegation.objects.create(
        artist=artist,
        label=label,
        status=Delegation.Status.ACTIVE,
        scopes={"recommendation": "grant_withdraw", "fraud_detection": "grant_withdraw"},
    )
    change(manager, ids[2:7], {"fraud_detection": True}, source=AuditEvent.Source.BULK)
    change(artist, ids[6:8], {"recommendation": False})
    # A new meaning of generative training: the grant on the first track lapses.
    latest = PolicyVersion.objects.order_by("-version").first()
    version = PolicyVersion.objects.create(
        version=latest.version + 1,
        summary="Generative training now includes voice models.",
        full_text="Generative training now includes training voice models on your recordings.",
        is_material=True,
    )
    version.purposes_changed.add(Purpose.objects.get(slug="generative_training"))
    publish_policy_version(version=version, effective_at=timezone.now() + timedelta(days=30))
    # Demo data only: the notice period is skipped so that the lapse shows now.
    PolicyVersion.objects.filter(pk=version.pk).update(effective_at=timezone.now())
    version.refresh_from_db()
    services.lapse_unconfirmed_grants(version=version)
    label_services.propose_grant(
        actor=manager,
        label=label,
        tracks=Track.objects.filter(pk__in=ids[8:]),
        purpose_slug="recommendation",
        message="For the autumn playlists.",
    )
    print(f"seeded {ARTIST_EMAIL} with {len(ids)} tracks")


def shoot(base_url: str, prefix: str) -> None:
    import io

    import django

    django.setup()
    from django.test import Client
    from PIL import Image
    from playwright.sync_api import sync_playwright

    from accounts.models import User

    client = Client()
    client.force_login(User.objects.get(email=ARTIST_EMAIL))
    session = client.cookies["sessionid"].value
    out = ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        for width, height in WIDTHS.items():
            context = browser.new_context(viewport={"width": width, "height": height}, base_url=base_url)
            context.add_cookies([{"name": "sessionid", "value": session, "url": base_url}])
            page = context.new_page()
            for name, path in PAGES.items():
                page.goto(path)
                png = page.screenshot(full_page=True)
                image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=64)
                target = out / f"{prefix}-{name}-{width}.png"
                image.save(target, optimize=True)
                print(target.relative_to(ROOT), target.stat().st_size // 1024, "KiB")
            context.close()
        browser.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["seed"]:
        seed()
    elif sys.argv[1:2] == ["shoot"] and len(sys.argv) == 4:
        shoot(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(__doc__)
