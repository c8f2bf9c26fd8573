"""The running proxy: the request handler that carries each request through parse,
authenticate, route and forward (`handler`), the admin listener, readiness and the opt-in
health paths on the S3 port, and the demo's embedded stores. The top of the request path.
"""
