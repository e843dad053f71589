# syntax=docker/dockerfile:1
# Documents Worker's image: the same steps as the README's (scripts/bootstrap), in two
# stages. The build stage makes .venv from requirements.lock (hashes checked, no
# resolution: `scripts/bootstrap venv`); the runtime stage installs the runtime's Debian
# packages with the same script (`scripts/bootstrap packages`, one list for both) and
# copies the .venv in. It runs as uid 10001 and writes only to /var/lib/docworker (the
# data folder) and /tmp, so its root file system may be read-only (docs/deployment.md).
#   docker build -t docworker:2 .
#   docker run --read-only --tmpfs /tmp -v docworker-data:/var/lib/docworker \
#     -e DOCWORKER_AUTH__SECRET=... -e DOCWORKER_SECRETS__KEYS=... -p 3001:3001 docworker:2

ARG DEBIAN_IMAGE=debian:bookworm-slim

FROM ${DEBIAN_IMAGE} AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /app
COPY scripts/bootstrap scripts/bootstrap
COPY pyproject.toml requirements.lock README.md LICENSE ./
COPY src src
# hadolint ignore=DL3009
RUN apt-get update -qq \
 && scripts/bootstrap venv \
 && .venv/bin/python -m compileall -q src

FROM ${DEBIAN_IMAGE} AS runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /app
COPY scripts/bootstrap scripts/bootstrap
RUN apt-get update -qq \
 && scripts/bootstrap packages \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/* \
 && useradd --system --uid 10001 --gid 0 --home-dir /var/lib/docworker --no-create-home \
      --shell /usr/sbin/nologin docworker \
 && install -d -o 10001 -g 0 -m 0770 /var/lib/docworker
COPY --from=build /app/.venv .venv
COPY --from=build /app/src src
COPY README.md LICENSE ./
# The runtime's packages are enough for the service to load.
RUN .venv/bin/docworker --version

# Everything the service and its engines write goes under the data folder or /tmp:
# HOME (LibreOffice's and Chromium's profiles are per instance under TMPDIR), the
# fontconfig cache (XDG_CACHE_HOME). Mount both as volumes with a read-only root.
# Chromium's own sandbox needs user namespaces, which the runtimes' default seccomp
# profiles refuse to a process without CAP_SYS_ADMIN: off here, the container confining
# the browser instead (docs/deployment.md); set it back to true where the container may
# make user namespaces.
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    TMPDIR=/tmp \
    DOCWORKER_DATA_DIR=/var/lib/docworker \
    DOCWORKER_PROFILE=production \
    DOCWORKER_SERVER__HOST=0.0.0.0 \
    DOCWORKER_SERVER__PORT=3001 \
    DOCWORKER_CHROMIUM__SANDBOX=false

USER 10001:0
VOLUME ["/var/lib/docworker"]
EXPOSE 3001
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3001/health/liveness', timeout=4)"]
ENTRYPOINT ["docworker"]
CMD ["serve"]
