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
PAGES = {"dashboard": "/dashboard/", "matrix": "/consent/"}
WIDTHS = {1280: 800, 390: 844}


def seed() -> None:
    import django

    django.setup()
    from accounts.models import User
    from tests.demo import seed_demo

    if User.objects.filter(email=ARTIST_EMAIL).exists():
        raise SystemExit(f"{ARTIST_EMAIL} exists already; use a fresh database.")
    demo = seed_demo(password="demo-password")  # noqa: S106 -- a development database only
    print(f"seeded {demo.artist.email} with {len(demo.tracks)} tracks")


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
