# sentimon: `make run` serves the API with its monitoring stack; `make test` runs every check.
# Both set themselves up.
.PHONY: run setup setup-dev test test-container test-overload compose-check lint typecheck unit format model bench soak profile bench-packing fuzz dashboards lock clean

HOST ?= 127.0.0.1
PORT ?= 8000
VENV ?= .venv
export SENTIMON_VENV := $(VENV)

run: setup
	@echo "open http://$(HOST):$(PORT)/ui/ or try: curl -s http://$(HOST):$(PORT)/predict -H 'content-type: application/json' -d '{\"text\": \"I love this!\"}'"
	$(VENV)/bin/sentimon up --port $(PORT)

setup:
	scripts/setup.sh

setup-dev:
	scripts/setup.sh --dev

# Lint, then every test; the log ends with the 20 slowest (CI's budget is 20 minutes).
test: setup-dev
	scripts/lint.sh
	scripts/test.sh --durations=20

# Overload at test scale, alone (part of `make test` too).
test-overload: setup-dev
	scripts/test.sh -m overload tests/integration/test_overload.py

# The Docker Compose stack checked offline (part of `make test` too).
compose-check: setup-dev
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/deploy/test_compose.py

# The container tests alone (part of `make test` too): the image built with podman from a local
# Debian base and run read-only, then the Compose stack brought up with docker compose v2
# (installs podman; layers and the base are cached between runs on the same machine).
test-container: setup-dev
	scripts/test.sh -m container tests/container

lint: setup-dev
	scripts/lint.sh

unit: setup-dev
	scripts/test.sh -m "not slow"

format:
	$(VENV)/bin/ruff format src tests bench dashboards
	$(VENV)/bin/ruff check --fix src tests bench dashboards

# Regenerate the Grafana dashboards (deploy/grafana/dashboards/) from dashboards/.
dashboards: setup-dev
	$(VENV)/bin/python -m dashboards

# Rebuild the bundled model from its pinned inputs (about 5 minutes on 2 cores).
model: setup
	$(VENV)/bin/sentimon model build --output src/sentimon/bundled_model

# The side-by-side benchmark (about 30 minutes; the first run also builds the peers' virtualenvs): writes bench/results/ and the README table.
bench: setup-dev
	$(VENV)/bin/python -m bench $(BENCH_ARGS)

# The bundled model at half its goodput for 30 minutes with the store and drift on: writes
# bench/results/soak.json and soak.md; SOAK_ARGS="--duration 300" for a shorter run.
soak: setup-dev
	$(VENV)/bin/python -m bench.soak $(SOAK_ARGS)

# Where the event loop's time goes per request (py-spy under load, about 40 s): writes
# bench/results/profile.md and profile.json.
profile: setup-dev
	$(VENV)/bin/python -m bench.profile $(PROFILE_ARGS)

# Sequence packing against the served padded path, and the int8 graph's own ceiling (about
# 5 minutes): writes bench/results/packing.md and packing.json.
bench-packing: setup-dev
	$(VENV)/bin/python -m bench.packing

# The fuzzing test of `make test` at length: 1000 schemathesis examples per endpoint.
fuzz: setup-dev
	SENTIMON_FUZZ_EXAMPLES=$${SENTIMON_FUZZ_EXAMPLES:-1000} scripts/test.sh tests/integration/test_fuzz.py

# Refresh requirements/lock.txt and requirements/dev-lock.txt from pyproject.toml (needs the
# package index; every install uses these locks).
lock: setup-dev
	scripts/lock.sh

clean:
	rm -rf $(VENV) .cache build .mypy_cache .ruff_cache .pytest_cache .coverage
