"""What several benchmarks set up the same way: a migrated throwaway database and one label's roster.

Imported by the scripts as `bench_setup` (Python puts the script's own folder first on the path).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = ["-h", "127.0.0.1", "-U", "postgres"]

# What the roster's delegations allow the label: grant and withdraw recommendation, withdraw fraud detection.
SCOPES = {"recommendation": "grant_withdraw", "fraud_detection": "withdraw", "generative_training": "none"}


def prepare_database(name: str) -> str:
    """Drop, create and migrate database `name`; its DATABASE_URL."""
    subprocess.run(["dropdb", *PG, "--if-exists", name], check=True)
    subprocess.run(["createdb", *PG, name], check=True)
    url = f"postgres://postgres@127.0.0.1:5432/{name}"
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    return url


class StatementCounter:
    """An execute wrapper that counts statements without copying their text (payloads can be megabytes)."""

    def __init__(self):
        self.n = 0

    def __call__(self, execute, sql, params, many, context):
        self.n += 1
        return execute(sql, params, many, context)


def label_roster(n_artists: int):
    """`n_artists` artists (no tracks yet) delegating SCOPES to one label with one manager: (artists, manager, label).

    Call after django.setup().
    """
    from accounts.models import User
    from labels.models import Delegation, Label, LabelMembership

    artists = User.objects.bulk_create(
        [User(email=f"artist{i}@bench.test", display_name=f"Artist {i:03d}", password="!") for i in range(n_artists)]
    )
    manager = User.objects.create_user(email="manager@bench.test", display_name="Manager")
    label = Label.objects.create(name="Bench Records", slug="bench-records")
    LabelMembership.objects.create(label=label, user=manager, role="owner")
    Delegation.objects.bulk_create(
        [Delegation(artist=a, label=label, status=Delegation.Status.ACTIVE, scopes=SCOPES) for a in artists]
    )
    return artists, manager, label
