"""The running proxy: the request handler that carries each request through parse,
authenticate, authorize, route and forward (`handler`, over one `exchange` per request:
`stages`, then `answers`), the admin listener, readiness and the opt-in
health paths on the S3 port, and the demo's embedded stores. The top of the request path.
"""
