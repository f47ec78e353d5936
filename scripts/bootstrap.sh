#!/usr/bin/env bash
# Make .venv with Python 3.12 or newer and install the given requirements file.
# Re-running is cheap: nothing is reinstalled unless the requirements changed.
set -euo pipefail
cd "$(dirname "$0")/.."
requirements="${1:-requirements.txt}"

find_python() {
  for candidate in python python3 python3.12 python3.13; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  # pyenv installs versions that are not on PATH unless selected.
  for candidate in "$HOME"/.pyenv/versions/3.1[2-9]*/bin/python3; do
    [ -x "$candidate" ] && { echo "$candidate"; return 0; }
  done
  return 1
}

if [ ! -x .venv/bin/python ]; then
  python_bin=$(find_python) || { echo "Python 3.12 or newer is required and was not found." >&2; exit 1; }
  echo "Creating .venv with $("$python_bin" --version)"
  "$python_bin" -m venv .venv
fi

stamp=".venv/.installed-$(basename "$requirements")"
digest=$(cat requirements*.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r "$requirements"
  echo "$digest" > "$stamp"
fi
