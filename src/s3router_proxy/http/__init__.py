"""The proxy's own HTTP/1.1 layers, the bottom of the request path.

`server` accepts client connections and frames requests (asyncio Protocol + llhttp); `client`
holds one connection pool per backend and frames responses. Both are strict about framing: a byte
that belongs to no message retires the connection. Nothing here knows about S3.
"""
