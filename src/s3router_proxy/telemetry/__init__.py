"""What the proxy tells its operators: Prometheus metrics and the plain counters behind them,
the access-log record of each request, and logging setup.

Fed by every stage; imports nothing from the request path above it.
"""
