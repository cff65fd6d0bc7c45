#!/usr/bin/env bash
# The GPU check (bench/gpu_check.py): on a GPU machine with only this repository, Python 3.11+
# and the NVIDIA driver, install what the GPU image installs (torch from Dockerfile.gpu's
# TORCH_INDEX, then the project with [gpu,train,embedded]) into .venv-gpu and write one JSON.
# Under 8 minutes in all: the installs are time-boxed, and the measurements get what is left
# (each part in its own time box). A second run reuses .venv-gpu.
#
#   bench/gpu_check.sh [OUT_JSON]          default bench/gpu_check.json
#   WHEELHOUSE=DIR bench/gpu_check.sh      install from a directory of wheels (no network)
#
# Without a GPU it stops at once with one line and exit code 2;
# `python -m streamrec.bench.gpu_check --dry-run` is the same check on the CPU at tiny sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
out=${1:-bench/gpu_check.json}
limit_s=${GPU_CHECK_LIMIT_S:-470}
venv=${GPU_CHECK_VENV:-.venv-gpu}
python=${PYTHON:-python3}

die() {
  echo "gpu_check: $*" >&2
  exit 2
}
elapsed() { echo $(($(date +%s) - start)); }

command -v nvidia-smi >/dev/null || die "no NVIDIA GPU here (nvidia-smi not found); run it on a GPU machine"
gpus=$(nvidia-smi -L 2>&1) || die "nvidia-smi fails: ${gpus%%$'\n'*}"
grep -q "^GPU " <<<"$gpus" || die "nvidia-smi lists no GPU: ${gpus%%$'\n'*}"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "$python is older than Python 3.11"

torch_index=$(sed -n 's/^ARG TORCH_INDEX=//p' Dockerfile.gpu)
pip_opts=(-q --disable-pip-version-check)
torch_from=(--index-url "$torch_index")
if [ -n "${WHEELHOUSE:-}" ]; then
  pip_opts+=(--no-index --find-links "$WHEELHOUSE")
  torch_from=()
fi
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv" || die "cannot create $venv (python3-venv missing?)"
echo "── gpu check: installing torch from ${WHEELHOUSE:-$torch_index} and the project into $venv" >&2
timeout 240 "$venv/bin/python" -m pip install "${pip_opts[@]}" torch==2.13.0 "${torch_from[@]}" ||
  die "installing torch==2.13.0 from ${WHEELHOUSE:-$torch_index} failed or took over 4 minutes"
# One pip call for the project (faust-streaming pins click<8.4, see the Dockerfiles).
timeout 180 "$venv/bin/python" -m pip install "${pip_opts[@]}" -e ".[gpu,train,embedded]" ||
  die "installing the project with [gpu,train,embedded] failed or took over 3 minutes"
if ! command -v redis-server >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq redis-server) >/dev/null 2>&1 || true # the e2e part needs it
fi

left=$((limit_s - $(elapsed)))
[ "$left" -gt 60 ] || die "the installs took $(elapsed) s of the ${limit_s} s; run again (the venv is kept)"
echo "── gpu check: $(elapsed) s installing; measuring for at most ${left} s" >&2
# the parts stop themselves; this is for a CUDA call that never returns (the JSON keeps the parts done)
timeout -k 10 $((left + 20)) "$venv/bin/python" -m streamrec.bench.gpu_check --device cuda \
  --budget-s $((left - 10)) --out "$out"
