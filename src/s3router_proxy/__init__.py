"""s3router_proxy: one S3 endpoint in front of many S3-compatible stores, routed by rule."""

__version__ = "0.1.0"
