"""Where a request goes: rules matched to a `Route` (backend, bucket, key), bucket and key names
mapped both ways, multipart upload ids that carry their route, `explain` of a decision and
`check` of a whole config.

Pure; runs once a request is authenticated, before anything is forwarded.
"""
