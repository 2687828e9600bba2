# The agent API image (`semcoder serve`), built by compose.yaml's `api` service:
#   docker build -t semcoder-api .
# Online, pip installs the package and its dependencies from PyPI. Offline (CI, no registry), put wheels in
# build/api-wheels/ first (`pip wheel '.[postgres]' pip -w build/api-wheels`, for the base image's Python;
# scripts/ci_compose_check.sh does it) and the build installs only from them, with pip run from its wheel
# (the debootstrapped stand-in for python:3.12-slim that scripts/docker_setup.sh imports has no pip).
FROM python:3.12-slim

WORKDIR /opt/semcoder
COPY pyproject.toml README.md ./
COPY agent/ agent/
COPY sandbox/ sandbox/
# The glob lets the build work without build/api-wheels (pyproject.toml always matches).
COPY pyproject.toml build/api-wheel[s] /tmp/wheels/
RUN set -eu; \
    if ls /tmp/wheels/semcoder_agent-*.whl >/dev/null 2>&1; then \
        python3 "$(ls /tmp/wheels/pip-*.whl | head -n 1)/pip" install --no-cache-dir --no-index \
            --find-links /tmp/wheels --break-system-packages "semcoder-agent[postgres]"; \
    else \
        python3 -m pip install --no-cache-dir "/opt/semcoder[postgres]"; \
    fi; \
    rm -rf /tmp/wheels; \
    semcoder serve --help >/dev/null

# Sandbox: the Docker backend by default. Each test run is a fresh locked-down container (no network,
# read-only root, tmpfs, no capabilities) started through the host engine's socket, which compose mounts.
# The socket is root-equivalent on the host: the API container is the trusted part, model-written code
# never runs in it. (The local bubblewrap backend would need a privileged container instead.)
ENV SEMCODER_SANDBOX_BACKEND=docker \
    SEMCODER_DB_URL=sqlite:////data/runs.sqlite \
    PYTHONUNBUFFERED=1 LANG=C.UTF-8
VOLUME /data
EXPOSE 8765
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 \
    CMD python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8765/health', timeout=4)"
# Without SEMCODER_API_TOKEN the server refuses to bind 0.0.0.0: set it (compose requires it).
CMD ["semcoder", "serve", "--host", "0.0.0.0", "--port", "8765"]
