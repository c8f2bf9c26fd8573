#!/usr/bin/env bash
# The benchmark's one entry point: direct nginx vs an nginx hop vs lakefs-s3-router.
#
#   bench/run.sh                      # 3 interleaved rounds x 5 s per wrk run, 1 GiB streams
#   bench/run.sh --quick              # ~10-20 s smoke run (numbers printed, never meaningful)
#   bench/run.sh --rounds 3 --duration 5 --write-docs   # and prepend the report to docs/benchmarks.md
#   bench/run.sh --rounds 0 --profile                   # only py-spy the proxy under c=64 GET load
#   bench/run.sh --only streams --baseline main         # only the 1 GiB rows, beside main's proxy
#   bench/run.sh --help
#
# Installs what is missing: nginx (its DAV module gives PUT/DELETE), wrk, curl, taskset and
# redis-server (for the Redis rows) with apt-get (root only), the project into .venv (pip install -e .), boto3, and py-spy for
# --profile. Exits 77 when the tools are missing and cannot be installed (not root, no apt-get,
# no registry), so callers can tell "cannot run here" from "failed".
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CANNOT_RUN=77

say() { printf '[bench] %s\n' "$*" >&2; }

missing=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)

if ((${#missing[@]})); then
    if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        say "missing ${missing[*]}, and cannot install them (needs root and apt-get)"
        exit "$CANNOT_RUN"
    fi
    say "installing ${missing[*]} with apt-get"
    # Keep a package install from starting a system nginx on port 80 (the benchmark runs its
    # own); only when no policy is in place already, and removed again afterwards.
    policy=/usr/sbin/policy-rc.d
    own_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
    fi
    status=0
    {
        apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                "${missing[@]}"
    } >&2 || status=$?
    ((own_policy)) && rm -f "$policy"
    if ((status)); then
        say "apt-get could not install ${missing[*]}"
        exit "$CANNOT_RUN"
    fi
fi
# redis-server backs the Redis rows: installed when it can be, else those rows are left out.
if ! command -v redis-server >/dev/null 2>&1 && [[ $EUID -eq 0 ]] \
    && command -v apt-get >/dev/null 2>&1; then
    say "installing redis-server with apt-get (for the Redis rows)"
    policy=/usr/sbin/policy-rc.d  # and keep its service from starting on 6379
    own_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
    fi
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends redis-server; } >&2 || say "could not install redis-server"
    if ((own_policy)); then rm -f "$policy"; fi
fi
PATH="$PATH:/usr/sbin"
if ! nginx -V 2>&1 | grep -q -- --with-http_dav_module; then
    say "this nginx has no http_dav_module (PUT/DELETE); Debian's nginx package has it"
    exit "$CANNOT_RUN"
fi

PY="${BENCH_PYTHON:-}"
if [[ -z $PY ]]; then
    if [[ ! -x $REPO/.venv/bin/python ]]; then
        say "creating $REPO/.venv"
        if ! python3 -m venv "$REPO/.venv" >&2; then
            [[ $EUID -eq 0 ]] || exit "$CANNOT_RUN"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
            python3 -m venv "$REPO/.venv" >&2
        fi
    fi
    PY="$REPO/.venv/bin/python"
fi
if ! (cd / && "$PY" -c "import s3router_proxy") >/dev/null 2>&1; then
    say "installing the project into $("$PY" -c 'import sys; print(sys.prefix)')"
    "$PY" -m pip install -q -e "$REPO" >&2
fi
if ! "$PY" -c "import boto3" >/dev/null 2>&1; then
    "$PY" -m pip install -q boto3 >&2
fi
for arg in "$@"; do
    if [[ $arg == --profile ]] && ! "$PY" -m pip show -q py-spy >/dev/null 2>&1; then
        "$PY" -m pip install -q py-spy >&2
    fi
done

cd "$REPO"
export BENCH_PYTHON="$PY"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" -m bench "$@"
