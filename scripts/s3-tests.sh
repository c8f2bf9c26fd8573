#!/usr/bin/env bash
# Ceph's s3-tests (tests/conformance/s3-tests), the whole suite, against moto directly and
# through the proxy; prints the counts and the tests whose outcome differs between the two, then
# compares every outcome with tests/conformance/expected.json (exit 1 on any change).
#
#   scripts/s3-tests.sh                      # compare with expected.json
#   scripts/s3-tests.sh --record             # write expected.json (a change made on purpose)
#   scripts/s3-tests.sh --workdir /tmp/s3t   # keep the logs, configs and junit files there
#
# About 20 minutes on 2 cores; it runs niced, so it can share a machine.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-.venv/bin/python}"
exec nice -n 10 "$python" tests/conformance/s3tests_runner.py "$@"
