"""The lakefs-s3-router benchmark: direct nginx vs one nginx hop vs the proxy, interleaved.

Entry point: `bench/run.sh` (installs nginx, wrk and curl when missing, then runs
`python -m bench`). See `docs/benchmarks.md` for results and `bench/runner.py` for the plan.
"""
