#!/usr/bin/env bash
# Creates .venv with a Python >= 3.12 and installs Bulwark with its dev tools.
# Usage: scripts/setup.sh   (idempotent; re-run after pulling)
set -euo pipefail
cd "$(dirname "$0")/.."

python_ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }

find_python() {
    local cand
    for cand in "${BULWARK_PYTHON:-}" python3.13 python3.12 python3; do
        [ -n "$cand" ] && command -v "$cand" >/dev/null 2>&1 && python_ok "$cand" && { command -v "$cand"; return; }
    done
    # pyenv installs interpreters that its shims hide unless selected.
    for cand in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python3 /usr/local/bin/python3.1[2-9] /usr/bin/python3.1[2-9]; do
        [ -x "$cand" ] && python_ok "$cand" && { echo "$cand"; return; }
    done
    return 1
}

if [ -x .venv/bin/python ] && python_ok .venv/bin/python; then
    :
else
    if ! py=$(find_python); then
        echo "Bulwark needs Python 3.12 or newer (Django 6). None was found:" >&2
        echo "  tried \$BULWARK_PYTHON, python3.13, python3.12, python3 and ~/.pyenv/versions/3.12+." >&2
        echo "  Install one (e.g. 'pyenv install 3.12') or set BULWARK_PYTHON=/path/to/python3.12." >&2
        exit 1
    fi
    echo "setup: creating .venv with $py ($("$py" --version))"
    rm -rf .venv
    "$py" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e '.[dev]'
    rm -f .venv/.installed-*
    touch "$stamp"
fi
