# sentimon: the API with the bundled model and its ONNX cache built in, as a non-root user on
# a read-only root filesystem (give it a writable /tmp, and /data for the SQLite prediction
# log unless SENTIMON_DATABASE_URL points at PostgreSQL; /var/log/sentimon is there, owned by
# that user, for a volume holding SENTIMON_LOG_FILE).
#
#   docker build -t sentimon --build-arg TORCH_INDEX_URL=<the PyTorch CPU index> .
#   docker run --read-only --tmpfs /tmp -v sentimon-data:/data -p 127.0.0.1:8000:8000 sentimon
#
# The same file builds from a plain Debian base with Debian's Python (the container tests do):
#   --build-arg BASE_IMAGE=localhost/debian-python:bookworm --build-arg PYTHON=/usr/bin/python3
ARG BASE_IMAGE=python:3.11-slim-bookworm

# The dependencies alone, so that a change to the source rebuilds none of their 1.3 GB.
FROM ${BASE_IMAGE} AS deps
ARG PYTHON=/usr/local/bin/python3
ARG TORCH_INDEX_URL=
# Or a folder of wheels holding torch's CPU build (mounted into the build).
ARG TORCH_FIND_LINKS=
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# The pinned CPU torch first (any other spec pulls GBs of CUDA packages), then exactly the lock.
COPY requirements/lock.txt requirements/lock.txt
RUN "${PYTHON}" -m venv /opt/sentimon \
    && /opt/sentimon/bin/pip install --upgrade "pip==26.3" "setuptools==84.2.1" "wheel==0.48.0" \
    && /opt/sentimon/bin/pip install "torch==2.13.0" ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} \
       ${TORCH_FIND_LINKS:+--find-links "$TORCH_FIND_LINKS"} \
    && /opt/sentimon/bin/pip install --no-deps -r requirements/lock.txt

# sentimon as a wheel, and the bundled model exported and quantized for both CPU classes, so
# the container never writes to its root filesystem, nor imports torch, to start on any CPU.
FROM deps AS build
COPY pyproject.toml README.md ./
COPY src/ src/
# Installed twice: into the venv (to check it and prepare the model) and alone under /overlay,
# which the runtime lays over the dependencies' venv.
RUN /opt/sentimon/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
    && /opt/sentimon/bin/pip install --no-deps --prefix /overlay /wheels/*.whl \
    && /opt/sentimon/bin/pip install --no-deps /wheels/*.whl \
    && /opt/sentimon/bin/pip check
RUN HF_HUB_OFFLINE=1 /opt/sentimon/bin/sentimon model prepare --cache-dir /opt/sentimon-cache

# The runtime builds on the dependencies' stage rather than copying its 1.3 GB venv into a fresh
# base: the same layers, without a copy that took a minute and a half of every cold build.
FROM deps AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="sentimon" \
      org.opencontainers.image.description="Sentiment analysis for short social-media text, with production monitoring built in" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/sentimon/sentimon"
RUN groupadd --system --gid 10001 sentimon \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin sentimon \
    && install -d -o 10001 -g 10001 /data /var/log/sentimon
# Only these small layers follow the source; the dependencies' are cached until the lock
# changes.
COPY --from=build /opt/sentimon-cache /opt/sentimon-cache
COPY --from=build /overlay/ /opt/sentimon/
ENV PATH=/opt/sentimon/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    HOME=/tmp \
    SENTIMON_HOST=0.0.0.0 \
    SENTIMON_PORT=8000 \
    SENTIMON_CACHE_DIR=/opt/sentimon-cache \
    SENTIMON_DATA_DIR=/data
USER 10001:10001
WORKDIR /tmp
EXPOSE 8000
# Ready: the model is loaded and a warm-up inference passed.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-m", "sentimon.probe"]
# Exec form: uvicorn is PID 1 and drains in-flight requests on SIGTERM.
ENTRYPOINT ["sentimon", "serve"]
