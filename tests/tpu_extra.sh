#!/usr/bin/env bash
# The [tpu] extra: libtpu (about 700 MB) in .venv_tpu, a venv that sees the suite's
# own packages (--system-site-packages), so the suite itself still runs as a CPU
# install does. Its tests compile for real TPU slices on this CPU (README, Extras).
#
#   bash tests/tpu_extra.sh install   # libtpu for the installed jax
#   bash tests/tpu_extra.sh test      # the tests CI affords: a hand-computable sharded
#                                     # matmul, a small preset's data-parallel and
#                                     # full-FSDP steps
#   bash tests/tpu_extra.sh test tests/aot_tpu_test.py tests/aot_test.py  # all of
#                                     # them (about three minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv_tpu
step="${1:-test}"
shift || true

case "$step" in
  install)
    jax_version=$(python -c 'import jax; print(jax.__version__)')
    python -m venv --system-site-packages --clear "$venv"
    "$venv/bin/pip" install -q "jax[tpu]==$jax_version"
    "$venv/bin/python" -c 'import importlib.metadata as m; print("libtpu", m.version("libtpu"))'
    ;;
  test)
    if [ ! -x "$venv/bin/python" ]; then
      echo "error: no $venv; run: bash tests/tpu_extra.sh install" >&2
      exit 2
    fi
    if [ "$#" -eq 0 ]; then
      set -- "tests/aot_tpu_test.py::test_sharded_matmul_flops_and_buffers_are_exact" \
             "tests/aot_tpu_test.py::test_data_parallel_step_all_reduces_every_gradient_once" \
             "tests/aot_tpu_test.py::test_fsdp_step_gathers_each_weight_a_bounded_number_of_times"
    fi
    "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
    ;;
  *)
    echo "usage: bash tests/tpu_extra.sh [install|test [pytest args]]" >&2
    exit 2
    ;;
esac
