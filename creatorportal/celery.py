import os
from pathlib import Path

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatorportal.settings")

app = Celery("creatorportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The project package is not an installed app, so its own tasks are named here.
app.conf.imports = ["creatorportal.tasks"]


@app.on_after_configure.connect
def _make_filesystem_queue_folders(sender, **kwargs):
    # kombu's filesystem transport (the quick start's broker) expects its
    # folders to exist; it does not create them.
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)
