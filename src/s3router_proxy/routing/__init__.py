"""Where a request goes: rules matched to a `Route` (backend, bucket, key), bucket and key names
mapped both ways, multipart upload ids that carry their route, and `explain` of a decision.

Pure; runs once a request is authenticated, before anything is forwarded.
"""
