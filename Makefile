.PHONY: run test lint migrations-check

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
