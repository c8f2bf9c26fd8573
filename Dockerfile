# lakefs-s3-router as a container or a sidecar.
# Mount the config at /etc/s3-router/config.yaml (or set S3_ROUTER_CONFIG); secrets can come
# from the environment through ${VAR} in the YAML.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    S3_ROUTER_CONFIG=/etc/s3-router/config.yaml

WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . \
    && useradd --system --uid 10001 --no-create-home s3router \
    && mkdir -p /etc/s3-router \
    && rm -rf /src
COPY config/s3-router-config.yaml /etc/s3-router/config.yaml

USER 10001
WORKDIR /
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import socket; socket.create_connection(('127.0.0.1', 8080), 2).close()"]
ENTRYPOINT ["lakefs-s3-router"]
CMD ["--listen", "0.0.0.0:8080"]
