#!/usr/bin/env bash
# Static checks: ruff (lint and format) and mypy --strict over src, tests and bench.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${SENTIMON_VENV:-.venv}/bin
"$bin/ruff" check src tests bench dashboards
"$bin/ruff" format --check src tests bench dashboards
"$bin/mypy"
# Generated files are current: the Grafana dashboards.
"$bin/python" -m dashboards --check
