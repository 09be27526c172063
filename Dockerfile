# syntax=docker/dockerfile:1
# Build stage: a wheel of the project and its dependencies.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ledger ledger
COPY clients clients
COPY migrations migrations
COPY schemas schemas
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Runtime stage: no compilers, no sources, a non-root user.
FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin ledger \
    && mkdir -p /data && chown ledger /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER ledger
WORKDIR /data
# The checkpoint origin (your domain): `--build-arg LEDGER_ORIGIN=…` or
# `docker run -e LEDGER_ORIGIN=…`. Stored in the database at first start;
# left empty, the first start stores ledger-<hex of the key> instead of the
# container's host name, which changes whenever the container is recreated.
ARG LEDGER_ORIGIN=
ENV LEDGER_ORIGIN=${LEDGER_ORIGIN} \
    LEDGER_DATA_DIR=/data \
    LEDGER_HOST=0.0.0.0 \
    LEDGER_PORT=8000 \
    PYTHONUNBUFFERED=1
# The signing key and the SQLite database: mount a volume here.
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"
# Migrations first (idempotent, advisory-locked on PostgreSQL), then the server.
CMD ["sh", "-c", "ledger db upgrade && exec ledger serve"]
