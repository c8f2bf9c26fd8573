#!/usr/bin/env bash
# The suite against the newest releases of every dependency, ignoring constraints.txt, in a venv
# of its own (.venv-newest) so the pinned .venv stays as CI has it. Prints each version that
# differs from the pin, then runs pytest with any arguments given (default: the whole suite).
#
#   scripts/test-newest.sh                              # everything
#   scripts/test-newest.sh tests/unit/s3/test_operations.py -rs   # what a new botocore adds
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${NEWEST_VENV:-.venv-newest}"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet --upgrade --upgrade-strategy eager -e '.[test]'

echo "Versions that differ from constraints.txt (pinned -> installed):"
"$venv/bin/python" - <<'PY'
import importlib.metadata as md
import re

pins = {}
for line in open("constraints.txt"):
    line = line.split("#", 1)[0].strip()
    if "==" in line:
        name, _, version = line.partition("==")
        pins[re.sub(r"[-_.]+", "-", name).lower()] = version
changed = 0
for dist in sorted(md.distributions(), key=lambda d: d.metadata["Name"].lower()):
    name = re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower()
    if name in pins and pins[name] != dist.version:
        print(f"  {name}: {pins[name]} -> {dist.version}")
        changed += 1
print(f"  ({changed} changed)" if changed else "  (none: the pins are the newest releases)")
PY

if [ "$#" -eq 0 ]; then
    set -- -rs
fi
exec "$venv/bin/pytest" "$@"
