"""Locust: artists browsing, saving consent and uploading, spread over several web processes.

Started by benchmarks/run_load.py, which seeds the artists and hands them over
in PORTAL_LOAD_SEED (a JSON file: per artist a session key and track uuids) and
the web processes in PORTAL_LOAD_HOSTS (comma-separated base URLs). Artist n
talks to host n mod len(hosts), as a load balancer without stickiness would
spread them; sessions live in the database, so any host serves any artist.

The portal runs with DJANGO_DEBUG=0, so its cookies are marked Secure and a
client on plain http would not send them back; each simulated artist therefore
holds its session cookie (made for it by the seed) and a CSRF cookie of its
own making, set as plain cookies. The server checks both exactly as it checks
a browser's.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import secrets
import string
import sys
import threading
from pathlib import Path

from locust import HttpUser, between, task

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.load_media import unique_wav

HOSTS = [host for host in os.environ.get("PORTAL_LOAD_HOSTS", "").split(",") if host]
with open(os.environ["PORTAL_LOAD_SEED"]) as seed_file:
    ARTISTS = json.load(seed_file)
_next_artist = itertools.count()
_lock = threading.Lock()
PURPOSES = ("recommendation", "fraud_detection")
TRACK_URL = re.compile(r"/tracks/([0-9a-f-]{36})/")


# Seconds an artist spends on a page before the next action.
THINK_MIN, THINK_MAX = (float(x) for x in os.environ.get("PORTAL_LOAD_THINK", "2,6").split(","))


class Artist(HttpUser):
    wait_time = between(THINK_MIN, THINK_MAX)
    host = HOSTS[0] if HOSTS else None

    def on_start(self):
        with _lock:
            number = next(_next_artist)
        seed = ARTISTS[number % len(ARTISTS)]
        self.client.base_url = HOSTS[number % len(HOSTS)]
        self.tracks: list[str] = list(seed["tracks"])
        self.csrf = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
        self.client.cookies.set("sessionid", seed["session"])
        self.client.cookies.set("csrftoken", self.csrf)

    def _page(self, path: str, name: str):
        with self.client.get(path, name=name, allow_redirects=False, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")

    @task(3)
    def dashboard(self):
        self._page("/dashboard/", "page: dashboard")

    @task(3)
    def track_list(self):
        self._page("/tracks/", "page: track list")

    @task(3)
    def consent_matrix(self):
        self._page("/consent/", "page: consent matrix")

    @task(3)
    def track_detail(self):
        self._page(f"/tracks/{random.choice(self.tracks)}/", "page: track detail")

    @task(2)
    def audit_log(self):
        self._page("/consent/log/", "page: audit log")

    @task(2)
    def stream_audio(self):
        headers = {"Range": "bytes=0-65535"}
        path = f"/tracks/{random.choice(self.tracks)}/audio/"
        with self.client.get(path, name="audio: range", headers=headers, catch_response=True) as response:
            if response.status_code != 206:
                response.failure(f"status {response.status_code}")

    @task(4)
    def save_consent(self):
        purposes = [slug for slug in PURPOSES if random.random() < 0.5]
        with self.client.post(
            f"/consent/tracks/{random.choice(self.tracks)}/",
            data={"csrfmiddlewaretoken": self.csrf, "purpose": purposes},
            name="save: consent",
            allow_redirects=False,
            catch_response=True,
        ) as response:
            if response.status_code != 302:
                response.failure(f"status {response.status_code}")

    @task(1)
    def upload(self):
        with self.client.post(
            "/tracks/upload/",
            data={"csrfmiddlewaretoken": self.csrf},
            files=[("files", ("take.wav", unique_wav(), "audio/wav"))],
            headers={"Accept": "application/json"},
            name="save: upload",
            catch_response=True,
        ) as response:
            if response.status_code != 201:
                response.failure(f"status {response.status_code}: {response.text[:200]}")
                return
            match = TRACK_URL.search(response.json()["results"][0]["url"])
            if match:
                self.tracks.append(match.group(1))
