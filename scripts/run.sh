#!/usr/bin/env bash
# Run the portal on the embedded defaults: SQLite and a filesystem Celery queue
# under var/, emails written to var/mail/. Web, worker and beat run together;
# Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh requirements.txt
mkdir -p var/mail var/log
export DJANGO_DEBUG="${DJANGO_DEBUG:-1}"
host="${HOST:-127.0.0.1}"
port="${PORT:-8000}"
export SITE_URL="${SITE_URL:-http://$host:$port}"

.venv/bin/python manage.py migrate --noinput
# A local test CA and C2PA signing certificate for public audio copies (first run only).
.venv/bin/python manage.py make_dev_c2pa_certificate
echo "Development accounts (development only):"
.venv/bin/python manage.py seed_dev

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

.venv/bin/celery -A creatorportal worker --loglevel=INFO --concurrency=2 >var/log/worker.log 2>&1 &
pids+=($!)
.venv/bin/celery -A creatorportal beat --loglevel=INFO >var/log/beat.log 2>&1 &
pids+=($!)

echo
echo "  Creator Consent Portal: $SITE_URL/"
echo "  Admin:                  $SITE_URL/admin/"
echo "  Emails are written to:  var/mail/   (read the newest: .venv/bin/python manage.py last_email)"
echo "  Worker and beat logs:   var/log/"
echo
.venv/bin/python manage.py runserver "$host:$port"
