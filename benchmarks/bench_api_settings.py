"""Settings for bench_api.py's gunicorn: the site's own, plus one bare view to compare against."""

from creatorportal.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.bench_api_urls"
