"""The proxy's own HTTP/1.1 layers, the bottom of the request path.

`server` accepts client connections (`clientconnection`, an asyncio Protocol) and frames
requests (`requestparser`, llhttp); `pool` holds one connection pool per backend, whose
connections (`client`) frame responses (`responseparser`). Both are strict about framing: a byte
that belongs to no message retires the connection. Nothing here knows about S3.
"""
