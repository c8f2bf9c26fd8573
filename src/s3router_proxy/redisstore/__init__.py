"""A store in Redis that answers S3 itself, for small transient objects.

A `kind: redis` backend is asked exactly as an HTTP backend is (`backends/call.backend_response`
hands it the request a backend would receive, its body verified while it streams) and answers
as S3 would: the same statuses, headers, XML documents and error codes, in an object shaped like
the HTTP client's answer. Everything above that seam (rules, names, split buckets, copies across
stores, mirrors, metrics, the access log) cannot tell it from an S3 backend.

`service.py` names the operation and answers it; `objects.py` (one object: put, get, head,
delete, copy), `buckets.py` and `listing.py` hold the S3 semantics; `conditions.py` the pure
rules for ranges and conditional requests; `store.py` every Redis command; `answers.py` the
answers and their XML.
"""
