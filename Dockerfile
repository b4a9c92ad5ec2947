# TraceChain image: the certificate service (default command) and the one-shot chain deployer
# (`python -m chain_node.deploy_command`). Built by docker-compose.yml; see docs/consortium.md.
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# The CJK TrueType font the certificate PDFs embed (same pin as scripts/install-system-packages.sh).
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-wqy-zenhei=0.9.45-8 \
    && rm -rf /var/lib/apt/lists/*

# A fixed non-root uid/gid: docker-compose.yml's consortium-init hands the deployer key to uid 10001.
# /data is created here, owned by that user, so a named volume mounted on it starts out writable.
RUN groupadd --system --gid 10001 tracechain \
    && useradd --system --uid 10001 --gid tracechain --home-dir /home/tracechain --create-home \
       --shell /usr/sbin/nologin tracechain \
    && install -d -o tracechain -g tracechain -m 0700 /data

WORKDIR /src

# Pinned dependencies first (a cached layer), then the project itself without resolving anything again.
COPY requirements.lock ./
RUN pip install -r requirements.lock
COPY pyproject.toml README.md ./
COPY contracts/build ./contracts/build
COPY trace_sdk ./trace_sdk
COPY chain_node ./chain_node
COPY certificate_service ./certificate_service
RUN pip install --no-deps /src && rm -rf /src

ENV TRACECHAIN_DATA_DIR=/data \
    TRACECHAIN_HTTP_HOST=0.0.0.0 \
    TRACECHAIN_HTTP_PORT=8000 \
    TRACECHAIN_WORKERS=2

USER 10001:10001
WORKDIR /home/tracechain
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=6 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/api/v1/health' % os.environ.get('TRACECHAIN_HTTP_PORT', '8000'), timeout=4)"]

# The service listens on all interfaces inside the container; docker-compose.yml publishes it on 127.0.0.1.
# Same command line as `tracechain up` (chain_node.up.service_command).
CMD ["sh", "-c", "exec uvicorn certificate_service.main:create_app --factory --host \"$TRACECHAIN_HTTP_HOST\" --port \"$TRACECHAIN_HTTP_PORT\" --workers \"$TRACECHAIN_WORKERS\" --loop uvloop --http httptools"]
