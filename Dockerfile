# The container flavour of the action (container/action.yml): the same package from the
# same lock as the composite flavour, in /opt/genai-gate, run by /entrypoint.
#
# BASE_IMAGE must provide Debian's apt when it has no python3 (CI here builds on a
# debootstrap'd Debian, see .ci/build-image); python:3.12-slim already has Python.
ARG BASE_IMAGE=python:3.12-slim

# ---------------------------------------------------------------- base: the interpreter
# Shared by both stages, so the venv built below points at an interpreter at the same path.
FROM ${BASE_IMAGE} AS base
ENV LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1
RUN if ! command -v python3 >/dev/null 2>&1; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            python3 python3-venv ca-certificates \
        && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb; \
    fi \
    && python3 --version

# ---------------------------------------------------------------- build: uv sync from the lock
# Every extra but spark (pyspark and a JVM, ~490 MB) and delta (deltalake, ~130 MB, for an
# inference-data folder that is a Delta table; its Parquet copy needs nothing) is in the image
# (semantic: the semantic_similarity scorer's local model, ~125 MB; gcs, azure: gs:// and
# az:// inference logs): a container action has no install step where a user could ask for one.
FROM base AS build
ENV UV_PROJECT_ENVIRONMENT=/opt/genai-gate \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON_PREFERENCE=only-system \
    UV_LINK_MODE=copy \
    UV_CACHE_DIR=/root/.cache/uv \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# The optional secret `build-ca` is a CA bundle for networks that inspect TLS (.ci/build-image
# passes the host's). It is mounted for these steps only and is in no layer.
RUN --mount=type=secret,id=build-ca \
    if [ -s /run/secrets/build-ca ]; then \
        export PIP_CERT=/run/secrets/build-ca SSL_CERT_FILE=/run/secrets/build-ca; \
    fi \
    && python3 -m venv /tmp/uv \
    && /tmp/uv/bin/pip install --quiet uv==0.13.9
WORKDIR /src
# dependencies first: this layer is reused until uv.lock or pyproject.toml change
COPY pyproject.toml uv.lock ./
RUN --mount=type=secret,id=build-ca \
    --mount=type=cache,target=/root/.cache/uv \
    if [ -s /run/secrets/build-ca ]; then export SSL_CERT_FILE=/run/secrets/build-ca; fi \
    && /tmp/uv/bin/uv sync --frozen --no-dev --no-editable --compile-bytecode \
        --extra semantic --extra gcs --extra azure --no-install-project --python python3
COPY README.md ./
COPY src ./src
RUN --mount=type=secret,id=build-ca \
    --mount=type=cache,target=/root/.cache/uv \
    if [ -s /run/secrets/build-ca ]; then export SSL_CERT_FILE=/run/secrets/build-ca; fi \
    && /tmp/uv/bin/uv sync --frozen --no-dev --no-editable --compile-bytecode --extra semantic \
        --extra gcs --extra azure --python python3 \
    && /opt/genai-gate/bin/genai-gate --version

# ---------------------------------------------------------------- the image
FROM base
LABEL org.opencontainers.image.title="genai-gate" \
      org.opencontainers.image.description="Gate GenAI models in CI with MLflow 3: the container flavour of the genai-gate action" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/genai-gate /opt/genai-gate
COPY --chmod=0755 entrypoint /entrypoint
ENV PATH=/opt/genai-gate/bin:${PATH}
# GitHub runs Docker actions as the image's default user (root) with --workdir
# /github/workspace; no USER or WORKDIR here on purpose.
ENTRYPOINT ["/entrypoint"]
