.PHONY: run test lint migrations-check messages

# Set up and run the portal on the embedded defaults (web + worker + beat).
run:
	scripts/run.sh

# Set up and run ruff, lint-imports, mypy and the whole test suite.
test:
	scripts/test.sh

lint:
	.venv/bin/ruff check .
	.venv/bin/lint-imports
	.venv/bin/mypy

migrations-check:
	.venv/bin/python manage.py makemigrations --check --dry-run

# Extract every marked message into locale/de/LC_MESSAGES/django.po, then (after
# translating) compile the .mo that is committed with it. Needs GNU gettext.
messages:
	.venv/bin/python manage.py makemessages -l de --no-location --no-obsolete --ignore=var --ignore=benchmarks --ignore=tests --ignore=test-artifacts --ignore=media --ignore=staticfiles
	.venv/bin/python manage.py compilemessages -l de --ignore=.venv
