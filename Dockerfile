# lakefs-s3-router as a container or a sidecar (see docs/deployment.md).
#
#   docker build -t lakefs-s3-router:0.1.0 .
#   docker run --rm -p 8080:8080 \
#       -v "$PWD/my-config.yaml:/etc/s3-router/config.yaml:ro" \
#       -e LAKEFS_SECRET_ACCESS_KEY=... lakefs-s3-router:0.1.0
#
# The config is read from /etc/s3-router/config.yaml ($S3_ROUTER_CONFIG): mount yours there (a
# file, or a directory holding config.yaml, e.g. a Kubernetes ConfigMap). Secrets stay out of the
# file: write ${VAR} or ${VAR:-default} in the YAML and pass VAR in the environment.
# The proxy listens for S3 on 0.0.0.0:8080 and runs as the unprivileged user 10001:10001.

# Pin a digest for reproducible builds: --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:...
ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: a wheel of the project, installed with its dependencies into a venv --------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# The venv has no pip of its own (the image's pip installs into it through --python), so the
# runtime stage gets the application and its dependencies, already byte-compiled, and no tools.
RUN python -m venv --without-pip /opt/s3-router \
    && pip wheel --no-deps --wheel-dir /tmp/wheels . \
    && pip --python /opt/s3-router/bin/python install /tmp/wheels/*.whl

# ---- runtime: the base image, the venv and a default config ------------------------------------
FROM ${PYTHON_IMAGE}

ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="lakefs-s3-router" \
      org.opencontainers.image.description="S3-protocol reverse proxy routing each bucket to one of many S3-compatible stores (AWS S3, MinIO, Ceph, lakeFS)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/s3-router/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    S3_ROUTER_CONFIG=/etc/s3-router/config.yaml

RUN groupadd --system --gid 10001 s3router \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin s3router

COPY --from=build /opt/s3-router /opt/s3-router
# A default so the image starts; replace it by mounting your own config over it.
COPY config/s3-router-config.yaml /etc/s3-router/config.yaml

# Numeric, so Kubernetes' runAsNonRoot can check it.
USER 10001:10001
WORKDIR /
# S3. The admin listener (/health, /ready, /metrics) stays on its default 127.0.0.1:9090, inside
# the container only; once the image moves it to 0.0.0.0:9090 (--admin), EXPOSE 9090 too.
EXPOSE 8080
# SIGTERM stops accepting, lets requests in flight finish and exits 0.
STOPSIGNAL SIGTERM
# For now: the S3 port accepts TCP connections. Next: an HTTP GET of the admin listener's
# http://127.0.0.1:9090/health that must answer 200, when the image enables it on 0.0.0.0:9090.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/opt/s3-router/bin/python", "-c", "import socket; socket.create_connection(('127.0.0.1', 8080), 2).close()"]
ENTRYPOINT ["/opt/s3-router/bin/lakefs-s3-router"]
CMD ["--listen", "0.0.0.0:8080"]
