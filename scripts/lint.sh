#!/usr/bin/env bash
# Static checks: ruff (lint and format) and mypy --strict over src, tests and bench.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${SENTIMON_VENV:-.venv}/bin
"$bin/ruff" check src tests bench
"$bin/ruff" format --check src tests bench
"$bin/mypy"
