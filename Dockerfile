# GameLens: one image, the embedded engine (chDB) by default; GAMELENS_CLICKHOUSE_URL for a server.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.txt /build/requirements.txt
# Exactly the pinned list, without the dependencies chDB declares but GameLens never imports (see the file).
RUN pip install --no-cache-dir --no-deps -r /build/requirements.txt
COPY pyproject.toml README.md /build/
COPY src /build/src
RUN pip install --no-cache-dir --no-deps /build \
    # The server installs nothing at run time: pip and setuptools (26 MB) stay in this stage.
    && python3 -m pip uninstall --yes --quiet pip setuptools

FROM ${BASE_IMAGE}
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GAMELENS_DATA_DIR=/data \
    GAMELENS_HOST=0.0.0.0 \
    PORT=8000
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home gamelens \
    && mkdir -p /data && chown gamelens:gamelens /data
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=40s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]
# One worker process: the embedded engine allows one process per data directory.
CMD ["sh", "-c", "exec gamelens serve --host \"$GAMELENS_HOST\" --port \"${PORT:-8000}\""]
