"""Who is asking and may they: SigV4 and SigV2 verification (and SigV4 re-signing for the
backend leg), then the per-client policy.

Runs right after a request is parsed, before its body is read or a route is chosen.
"""
