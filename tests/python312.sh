#!/usr/bin/env bash
# The second supported Python. Builds .venv312 from python3.12 with the jax line pip
# gives it (0.12.x; the versions CI tested are pinned in constraints/py3.12.txt),
# then runs there the fast tier and the smoke study (train, fit with influences,
# report), the path a 3.12 study once died on after training.
#
#   bash tests/python312.sh           # build the environment, then test
#   bash tests/python312.sh install   # only build it (CI overlaps this download with
#                                     # the 3.11 suite)
#   bash tests/python312.sh test      # only test, in the environment built before
#
# PYTHON312 names the interpreter when neither `python3.12` nor pyenv's 3.12 is found.
# PYTHON312_WORKERS sets the test workers (default 2; CI runs it beside the 3.11 suite
# with 1).
set -euo pipefail
cd "$(dirname "$0")/.."
step="${1:-all}"
venv=.venv312

find_python312() {
  if [ -n "${PYTHON312:-}" ]; then echo "$PYTHON312"; return; fi
  if python3.12 --version > /dev/null 2>&1; then echo python3.12; return; fi
  # pyenv's shim answers only for the selected versions: look among the installed.
  if command -v pyenv > /dev/null; then
    local found
    found=$(ls -d "$(pyenv root)"/versions/3.12*/bin/python3.12 2> /dev/null | tail -n 1)
    if [ -n "$found" ]; then echo "$found"; return; fi
  fi
  echo "error: no Python 3.12 found (python3.12 on PATH, or pyenv's); install it" \
       "(e.g. pyenv install 3.12) or set PYTHON312=/path/to/python3.12" >&2
  exit 2
}

install() {
  local python
  python=$(find_python312)
  "$python" -m venv --clear "$venv"
  "$venv/bin/pip" install -q -e '.[test]' -c constraints/py3.12.txt
  "$venv/bin/python" -c 'import sys, jax; print(f"Python {sys.version.split()[0]}, jax {jax.__version__}")'
}

run_tests() {
  if [ ! -x "$venv/bin/python" ]; then
    echo "error: no $venv; run: bash tests/python312.sh install" >&2
    exit 2
  fi
  env -u SCALING_JAX_SMOKE_STUDY_ELSEWHERE \
    "$venv/bin/python" -m pytest -q -n "${PYTHON312_WORKERS:-2}" --dist loadfile \
    -m "not slow or smoke_study"
}

case "$step" in
  install) install ;;
  test) run_tests ;;
  all) install && run_tests ;;
  *) echo "usage: bash tests/python312.sh [install|test]" >&2; exit 2 ;;
esac
