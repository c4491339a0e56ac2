#!/usr/bin/env bash
# Podman set up the way these machines need it, and the local Debian base image the container
# tests build sentimon's image from (no image is pulled from any registry).
#   scripts/containers.sh setup   packages and /etc/containers config (root; idempotent)
#   scripts/containers.sh base    localhost/sentimon-base:bookworm, unless it exists
# Why each setting: runc (crun refuses hybrid cgroups), netavark (compose services resolve each
# other by name), ulimits podman can set without CAP_SYS_RESOURCE, every remote registry
# blocked (an accidental pull fails at once instead of waiting).
set -euo pipefail
BASE=${SENTIMON_BASE_IMAGE:-localhost/sentimon-base:bookworm}

setup() {
  local missing=()
  for tool in podman runc mmdebstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  if (( ${#missing[@]} )); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends podman runc netavark aardvark-dns mmdebstrap \
      iptables >/dev/null
  fi
  mkdir -p /etc/containers
  cat > /etc/containers/containers.conf <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"

[network]
network_backend = "netavark"
CONF
  cat > /etc/containers/registries.conf <<'CONF'
unqualified-search-registries = []

[[registry]]
prefix = "docker.io"
location = "docker.io"
blocked = true

[[registry]]
prefix = "quay.io"
location = "quay.io"
blocked = true

[[registry]]
prefix = "ghcr.io"
location = "ghcr.io"
blocked = true
CONF
}

base() {
  if podman image exists "$BASE"; then return; fi
  local sources=()
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
    [[ -s "$f" ]] && sources+=("$f")
  done
  mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates bookworm - \
    "${sources[@]}" | podman import --quiet - "$BASE" >/dev/null
}

case "${1:-}" in
  setup) setup ;;
  base) base ;;
  *) echo "usage: $0 setup|base" >&2; exit 2 ;;
esac
