"""The request body on its way to a backend: payload hash checks, UNSIGNED-PAYLOAD and
aws-chunked decoding with trailers, streamed chunk by chunk and never buffered whole.

Sits between authentication (which declares what the body must hash to) and forwarding.
"""
