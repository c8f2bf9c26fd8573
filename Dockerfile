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
# The proxy listens for S3 on 0.0.0.0:8080 and its admin listener (/health, /ready, /metrics) on
# 0.0.0.0:9090, and runs as the unprivileged user 10001:10001.

# A full version tag, so a rebuild next month starts from the same Python. For a byte-identical
# base, add its digest (docker buildx imagetools inspect python:3.11.13-slim-bookworm):
#   --build-arg PYTHON_IMAGE=python:3.11.13-slim-bookworm@sha256:...
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# ---- build: a wheel of the project, installed with its dependencies into a venv --------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY src ./src
# The venv has no pip of its own (the image's pip installs into it through --python), so the
# runtime stage gets the application and its dependencies, already byte-compiled, and no tools.
# The dependencies are the versions in constraints.txt, the ones the tests ran with.
RUN python -m venv --without-pip /opt/s3-router \
    && pip wheel --no-deps --wheel-dir /tmp/wheels . \
    && pip --python /opt/s3-router/bin/python install -c constraints.txt /tmp/wheels/*.whl

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
# S3, and the admin listener, so the kubelet's probes and Prometheus reach it (outside a container
# its default stays 127.0.0.1). It serves no secret: /explain needs router.admin_token.
EXPOSE 8080 9090
# SIGTERM stops accepting, lets requests in flight finish and exits 0.
STOPSIGNAL SIGTERM
# The admin listener's /health must answer 200 (urlopen raises on anything else); there is no
# curl in the slim image, so its own Python asks.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/opt/s3-router/bin/python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9090/health', timeout=2)"]
ENTRYPOINT ["/opt/s3-router/bin/lakefs-s3-router"]
CMD ["--listen", "0.0.0.0:8080", "--admin", "0.0.0.0:9090"]
