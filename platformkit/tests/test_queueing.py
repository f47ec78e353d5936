"""Services enqueue their app's tasks by name; the name must resolve in a process that never imported the tasks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

NAMES = ("notifications.tasks.deliver_notifications", "tracks.process_track", "accounts.build_data_export")


def test_task_named_finds_tasks_a_fresh_web_process_has_not_imported():
    script = (
        "import django; django.setup()\n"
        "import sys\n"
        "from platformkit.queueing import task_named\n"
        "assert not {'notifications.tasks', 'tracks.tasks', 'accounts.tasks'} & set(sys.modules)\n"
        f"print(','.join(task_named(n).name for n in {NAMES!r}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "creatorportal.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ",".join(NAMES)
