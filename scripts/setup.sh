#!/usr/bin/env bash
# Set up everything sentimon needs on a Debian/Ubuntu machine: Debian packages (when root),
# a virtualenv in .venv with sentimon installed. Usage: scripts/setup.sh [--dev]
# The monitoring stack of `sentimon up` comes from Debian: prometheus (with promtool),
# prometheus-alertmanager (with amtool) and prometheus-node-exporter.
#   --dev  also the test tools: the Python dev extras, PostgreSQL (for the store tests) and
#          chromium (for the web UI's browser tests).
# Safe to re-run: it skips what is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[[ "${1:-}" == "--dev" ]] && dev=1
venv=${SENTIMON_VENV:-.venv}
python=${PYTHON:-python3}

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

apt_packages=()
have_python() { command -v "$python" >/dev/null && "$python" -c 'import sys, venv, ensurepip; assert sys.version_info >= (3, 11)' 2>/dev/null; }
have_python || apt_packages+=(python3 python3-venv)
command -v promtool >/dev/null || apt_packages+=(prometheus)
command -v amtool >/dev/null || apt_packages+=(prometheus-alertmanager)
command -v prometheus-node-exporter >/dev/null || command -v node_exporter >/dev/null \
  || apt_packages+=(prometheus-node-exporter)
# The tests run the feedback store on a throwaway PostgreSQL server too.
if [[ $dev -eq 1 ]] && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null \
  && ! command -v initdb >/dev/null; then
  apt_packages+=(postgresql)
fi
# The web UI's tests run in Debian's chromium.
if [[ $dev -eq 1 ]] && ! command -v chromium >/dev/null; then
  apt_packages+=(chromium)
fi
if (( ${#apt_packages[@]} )); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    log "installing Debian packages: ${apt_packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
  else
    echo "missing: ${apt_packages[*]}; install them (as root: apt-get install ${apt_packages[*]})" >&2
    exit 1
  fi
fi
have_python || { echo "need Python >= 3.11 with venv ($python)" >&2; exit 1; }

if [[ ! -x "$venv/bin/python" ]]; then
  log "creating $venv"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
# The lock files (scripts/lock.sh, `make lock`) pin every package; they are installed without
# resolving anything else, so every machine and the image run the same versions.
lock=requirements/$([[ $dev -eq 1 ]] && echo dev-lock.txt || echo lock.txt)
stamp="$venv/.sentimon-installed-$(basename "$lock" .txt)"
want=$(cat pyproject.toml scripts/setup.sh "$lock" | sha256sum | cut -c1-16)
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  log "installing Python packages into $venv from $lock (torch CPU build, transformers, FastAPI...)"
  "${pip[@]}" install --upgrade pip setuptools wheel
  # Exactly this torch, first: any other spec pulls a build with several GB of CUDA packages.
  # TORCH_INDEX_URL (the PyTorch CPU index) is searched besides the default index; its
  # 2.13.0+cpu ranks above a plain 2.13.0, so the CPU build wins (and satisfies the lock's
  # torch==2.13.0).
  "${pip[@]}" install "torch==2.13.0" ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"}
  "${pip[@]}" install --no-deps -r "$lock"
  "${pip[@]}" install --no-deps --no-build-isolation -e .
  "$venv/bin/python" -m pip check >/dev/null || {
    "$venv/bin/python" -m pip check >&2
    echo "the installed packages do not fit together: refresh the lock (make lock)" >&2
    exit 1
  }
  echo "$want" > "$stamp"
fi
log "ready: $venv"
