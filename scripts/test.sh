#!/usr/bin/env bash
# Every test, with coverage. Extra arguments go to pytest (e.g. -m "not slow").
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${SENTIMON_VENV:-.venv}/bin
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
"$bin/coverage" erase
"$bin/coverage" run -m pytest "$@"
"$bin/coverage" combine --quiet
"$bin/coverage" report
