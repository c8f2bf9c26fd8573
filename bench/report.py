"""Results: per-round measurements in, one markdown report with ratios and target verdicts out.

Absolute numbers are medians over rounds. Ratios are medians of per-round *paired* ratios (the
three paths of one round ran back to back), which cancels most of a shared machine's drift.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PATHS = ("direct", "nginx", "proxy")
TABLE_HEADER = (
    "| workload | metric | direct | nginx hop | proxy | proxy/direct | proxy/hop "
    "| hop CPU | proxy CPU |"
)
DOC_TITLE = "# Benchmarks"


@dataclass
class Measure:
    """One run of one workload on one path."""

    value: float  # ops/s or MB/s
    p50_ms: float | None = None
    p99_ms: float | None = None
    cpu: float | None = None  # the path's front server: µs per request, or s per GiB
    errors: int = 0


@dataclass
class Results:
    """Everything measured in one benchmark run."""

    rows: dict[str, dict[str, list[Measure]]] = field(default_factory=dict)
    rss_start_kib: int = 0
    rss_peak_kib: int = 0  # VmHWM over the whole run
    rss_stream_peak_kib: int = 0  # VmHWM during the large streams
    sigv4: dict[str, dict[str, float] | str] = field(default_factory=dict)
    rounds: int = 0
    stream_bytes: int = 1 << 30

    def add(self, row: str, path: str, measure: Measure) -> None:
        self.rows.setdefault(row, {}).setdefault(path, []).append(measure)

    def values(self, row: str, path: str, pick: Callable[[Measure], float | None]) -> list[float]:
        found = [pick(m) for m in self.rows.get(row, {}).get(path, [])]
        return [v for v in found if v is not None]

    def median(self, row: str, path: str, pick: Callable[[Measure], float | None]) -> float | None:
        found = self.values(row, path, pick)
        return statistics.median(found) if found else None

    def paired(
        self,
        row: str,
        a: str,
        b: str,
        pick: Callable[[Measure], float | None],
        combine: Callable[[float, float], float],
    ) -> float | None:
        """Median over rounds of combine(a's value, b's value) from the same round."""
        first = self.rows.get(row, {}).get(a, [])
        second = self.rows.get(row, {}).get(b, [])
        pairs = []
        for x, y in zip(first, second, strict=False):
            vx, vy = pick(x), pick(y)
            if vx is not None and vy is not None and (vy != 0 or combine is _diff):
                pairs.append(combine(vx, vy))
        return statistics.median(pairs) if pairs else None

    def spread(self, row: str, path: str, pick: Callable[[Measure], float | None]) -> float:
        """(max - min) / median over rounds: how noisy this cell was."""
        found = self.values(row, path, pick)
        if len(found) < 2 or statistics.median(found) == 0:
            return 0.0
        return (max(found) - min(found)) / statistics.median(found)

    @property
    def errors(self) -> int:
        return sum(m.errors for paths in self.rows.values() for ms in paths.values() for m in ms)


def _ratio(a: float, b: float) -> float:
    return a / b


def _diff(a: float, b: float) -> float:
    return a - b


def _value(m: Measure) -> float | None:
    return m.value


def _p50(m: Measure) -> float | None:
    return m.p50_ms


def _p99(m: Measure) -> float | None:
    return m.p99_ms


def _cpu(m: Measure) -> float | None:
    return m.cpu


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


SMALL = ("PUT", "GET", "HEAD", "LIST")
# The large streams: a presigned PUT (unsigned payload: spliced), a PUT whose signature covers
# its body's SHA-256 (hashed by the proxy as it flows), a GET.
SIGNED_PUT = "PUT signed"
STREAMS = ("PUT", SIGNED_PUT, "GET")
SMALL_LABEL = {
    "PUT": "PUT 4 KiB",
    "GET": "GET 4 KiB",
    "HEAD": "HEAD (0 B object)",
    "LIST": "ListObjectsV2 (3 keys)",
}


def table(results: Results) -> list[str]:
    lines = [TABLE_HEADER, "|---|---|---:|---:|---:|---:|---:|---:|---:|"]

    def row(name: str, metric: str, key: str, pick: Callable[[Measure], float | None],
            digits: int, cpu_unit: str) -> None:  # fmt: skip
        if key not in results.rows:
            return  # left out by --only
        cells = [_fmt(results.median(key, p, pick), digits) for p in PATHS]
        direct = _fmt_ratio(results.paired(key, "proxy", "direct", pick, _ratio))
        hop = _fmt_ratio(results.paired(key, "proxy", "nginx", pick, _ratio))
        cpu_digits = 2 if cpu_unit == "s/GiB" else 0
        hop_cpu = results.median(key, "nginx", _cpu) if cpu_unit else None
        proxy_cpu = results.median(key, "proxy", _cpu) if cpu_unit else None
        hop_cell = f"{_fmt(hop_cpu, cpu_digits)} {cpu_unit}" if hop_cpu is not None else ""
        proxy_cell = f"{_fmt(proxy_cpu, cpu_digits)} {cpu_unit}" if proxy_cpu is not None else ""
        lines.append(
            f"| {name} | {metric} | {' | '.join(cells)} | {direct} | {hop} "
            f"| {hop_cell} | {proxy_cell} |"
        )

    for op in SMALL:
        label = SMALL_LABEL[op]
        row(f"{label} c=1", "p50 ms", f"{op} c=1", _p50, 3, "µs/req")
        row(f"{label} c=1", "p99 ms", f"{op} c=1", _p99, 3, "")
        row(f"{label} c=64", "ops/s", f"{op} c=64", _value, 0, "µs/req")
    for op in STREAMS:
        key = f"{op} stream"
        if key in results.rows:
            row(f"{op} {_stream_label(results)}", "MB/s", key, _value, 0, "s/GiB")
    for op in ("put_object", "get_object"):
        key = f"boto3 {op}"
        if key in results.rows:
            row(f"boto3 serial {op} 4 KiB", "ops/s", key, _value, 0, "")
    return lines


def before_after(results: Results, revision: str) -> list[str]:
    """The proxy as of `revision` ("before") against this tree's ("after"), same rounds."""
    lines = [
        f"Before ({revision}) and after (this tree), both proxies in front of the same nginx, "
        "interleaved in the same rounds (for p50, below 1.00x is faster; for the rest, above):",
        "",
        "| workload | metric | before | after | after/before | before CPU | after CPU |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    keys = [(f"{SMALL_LABEL[op]} c=1", "p50 ms", f"{op} c=1", _p50, 3) for op in SMALL]
    keys += [(f"{SMALL_LABEL[op]} c=64", "ops/s", f"{op} c=64", _value, 0) for op in SMALL]
    keys += [(f"{op} {_stream_label(results)}", "MB/s", f"{op} stream", _value, 0)
             for op in STREAMS]  # fmt: skip
    keys += [(f"boto3 serial {op} 4 KiB", "ops/s", f"boto3 {op}", _value, 0)
             for op in ("put_object", "get_object")]  # fmt: skip
    for name, metric, key, pick, digits in keys:
        if "before" not in results.rows.get(key, {}):
            continue
        unit = "s/GiB" if "stream" in key else ("µs/req" if "c=" in key else "")
        cpu_digits = 2 if unit == "s/GiB" else 0
        cpus = [results.median(key, p, _cpu) if unit else None for p in ("before", "proxy")]
        cpu_cells = [f"{_fmt(c, cpu_digits)} {unit}" if c is not None else "" for c in cpus]
        lines.append(
            f"| {name} | {metric} | {_fmt(results.median(key, 'before', pick), digits)} "
            f"| {_fmt(results.median(key, 'proxy', pick), digits)} "
            f"| {_fmt_ratio(results.paired(key, 'proxy', 'before', pick, _ratio))} "
            f"| {cpu_cells[0]} | {cpu_cells[1]} |"
        )
    return lines


def _stream_label(results: Results) -> str:
    size = results.stream_bytes
    return "1 GiB" if size == 1 << 30 else f"{size // (1 << 20)} MiB"


@dataclass(frozen=True)
class Verdict:
    target: str
    measured: str
    met: bool | None  # None: not measured


def targets(results: Results) -> list[Verdict]:
    verdicts = []
    for op in SMALL:
        cpu = results.median(f"{op} c=64", "proxy", _cpu)
        verdicts.append(
            Verdict(
                f"{SMALL_LABEL[op]} proxy CPU per request at c=64 ≤ 60 µs",
                "-" if cpu is None else f"{cpu:.0f} µs",
                None if cpu is None else cpu <= 60,
            )
        )
    for op in SMALL:
        added = results.paired(f"{op} c=1", "proxy", "direct", _p50, _diff)
        verdicts.append(
            Verdict(
                f"{SMALL_LABEL[op]} added p50 at c=1 over direct ≤ 0.10 ms",
                "-" if added is None else f"{added:+.3f} ms",
                None if added is None else added <= 0.10,
            )
        )
    label = _stream_label(results)
    ratio = results.paired("GET stream", "proxy", "direct", _value, _ratio)
    verdicts.append(
        Verdict(
            f"GET {label} MB/s ≥ 0.8x direct",
            _fmt_ratio(ratio),
            None if ratio is None else ratio >= 0.8,
        )
    )
    cpu_ratio = results.paired("GET stream", "proxy", "before", _cpu, _ratio)
    verdicts.append(
        Verdict(
            f"GET {label} proxy CPU per GiB ≤ 1/3 of before (--baseline)",
            _fmt_ratio(cpu_ratio),
            None if cpu_ratio is None else cpu_ratio <= 1 / 3,
        )
    )
    ratio = results.paired(f"{SIGNED_PUT} stream", "proxy", "nginx", _value, _ratio)
    verdicts.append(
        Verdict(
            f"PUT {label} with a signed payload MB/s ≥ 1.0x nginx hop",
            _fmt_ratio(ratio),
            None if ratio is None else ratio >= 1.0,
        )
    )
    peak = results.rss_peak_kib / 1024 if results.rss_peak_kib else None
    verdicts.append(
        Verdict(
            "proxy peak RSS (VmHWM) ≤ 64 MiB",
            "-" if peak is None else f"{peak:.1f} MiB",
            None if peak is None else peak <= 64,
        )
    )
    for op in ("put_object", "get_object"):
        ratio = results.paired(f"boto3 {op}", "proxy", "direct", _value, _ratio)
        verdicts.append(
            Verdict(
                f"boto3 serial {op} through the proxy ≥ 0.85x direct",
                _fmt_ratio(ratio),
                None if ratio is None else ratio >= 0.85,
            )
        )
    ours = results.sigv4.get("ours_header_get")
    value = ours.get("median_us") if isinstance(ours, dict) else None
    verdicts.append(
        Verdict(
            "SigV4 verify + re-sign ≤ 12 µs per request (typical GET)",
            "-" if value is None else f"{value:.1f} µs",
            None if value is None else value <= 12,
        )
    )
    return verdicts


def _verdict_word(met: bool | None) -> str:
    return {True: "MET", False: "MISSED", None: "NOT MEASURED"}[met]


def render(
    results: Results,
    *,
    stamp: str,
    command: str,
    machine: Sequence[str],
    settings: str,
    notes: Sequence[str] = (),
    baseline: str | None = None,
    extra: Sequence[str] = (),
) -> str:
    out = [f"## {stamp}", "", f"Command: `{command}`", "", settings, ""]
    out += ["Machine:", "", *[f"- {line}" for line in machine], ""]
    out += table(results)
    out.append("")
    out += [*extra, ""] if extra else []
    if baseline:
        out += [*before_after(results, baseline), ""]
    noisy = [
        (results.spread(key, p, _value if "c=1" not in key else _p50), key, p)
        for key in results.rows
        for p in PATHS
    ]
    if noisy and results.rounds > 1:
        worst = max(noisy)
        out.append(
            f"Round-to-round spread ((max - min) / median) of the cells above: up to "
            f"{worst[0] * 100:.0f}% ({worst[1]}, {worst[2]})."
        )
    if results.errors:
        out.append(f"**{results.errors} failed requests** (wrk socket errors or 4xx/5xx).")
    mib = 1024
    out.append(
        f"Proxy memory: RSS {results.rss_start_kib / mib:.1f} MiB after start; peak (VmHWM) "
        f"{results.rss_peak_kib / mib:.1f} MiB over the whole run, "
        f"{results.rss_stream_peak_kib / mib:.1f} MiB during the large streams."
    )
    out.append("")
    if results.sigv4:
        out.append("SigV4, CPU µs per request (median / best of the repeats):")
        out.append("")
    labels = {
        "ours_header_get": "proxy: parse_auth + check_time + verify_signature + sign_request, "
        "boto3-style header-signed GET",
        "parse_auth": "of which parse_auth",
        "check_time": "of which check_time",
        "verify_signature": "of which verify_signature",
        "sign_request": "of which amz_date + sign_request",
        "ours_presigned_get": "proxy: the same for a presigned GET",
        "botocore_add_auth": "botocore S3SigV4Auth.add_auth (signing only), same GET",
        "parse_request": "proxy: parse_request (for context, not in the target)",
        "calibration_loop": "calibration: a fixed pure-Python loop (10,000 additions) on the "
        "server CPU; compare across runs, lower is a faster or quieter CPU",
    }
    for key, label in labels.items():
        entry = results.sigv4.get(key)
        bullet = "  -" if label.startswith("of which") else "-"
        if isinstance(entry, dict):
            out.append(f"{bullet} {label}: {entry['median_us']:.1f} / {entry['best_us']:.1f}")
        elif entry is not None:
            out.append(f"{bullet} {label}: {entry}")
    out += ["", "### Targets", "", "| target | measured | verdict |", "|---|---:|---|"]
    for verdict in targets(results):
        out.append(f"| {verdict.target} | {verdict.measured} | {_verdict_word(verdict.met)} |")
    out.append("")
    for note in notes:
        out.append(note)
    return "\n".join(out).rstrip() + "\n"


DOC_INTRO = """\
# Benchmarks

Produced by `bench/run.sh` (see `bench/runner.py` for exactly what runs): three paths measured
in one run, interleaved in rounds, on loopback, client side pinned to CPU 0 and servers to CPU 1:

- **direct**: nginx serving the objects from tmpfs (`dav_methods PUT DELETE`), with a static
  ListObjectsV2 answer;
- **nginx hop**: nginx as a plain streaming reverse proxy in front of it (the cost of one C hop);
- **proxy**: lakefs-s3-router with full SigV4 verification, routing and re-signing, in front of
  the same nginx.

Small requests are wrk with pre-made presigned URLs; large streams are curl; the serial SDK
loop is boto3. Newest run first; every run keeps its own dated section.

```sh
bench/run.sh --quick                                  # ~15 s smoke run, numbers meaningless
bench/run.sh --rounds 3 --duration 5 --write-docs     # a real run, prepended here
bench/run.sh --baseline REV --write-docs              # and the proxy as of git REV, side by side
bench/run.sh --rounds 0 --profile                     # py-spy the proxy under c=64 GET load
python -m bench.client_micro                          # backend leg alone: aiohttp vs lean client
python -m bench.workers --workers 1 2                 # c=64 GET ops/s per --workers count
python -m bench.migrate_rate                          # one migrate process: CPU per object and GiB
```

The machine these runs come from is shared (other people's test suites run on the same two
cores), so compare ratios within one run, and CPU per request, rather than absolute numbers
across runs; the `calibration` line of each run says how fast the server CPU was going.
"""


def write_docs(path: Path, section: str) -> None:
    """Prepend `section` under the intro of `path`, keeping every earlier section."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    match = re.search(r"^## ", old, flags=re.MULTILINE)
    earlier = old[match.start() :] if match else ""
    intro = old[: match.start()] if match else ""
    if not intro.strip():
        intro = DOC_INTRO
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(intro.rstrip() + "\n\n" + section.rstrip() + "\n\n" + earlier, "utf-8")
    path.write_text(path.read_text(encoding="utf-8").rstrip() + "\n", encoding="utf-8")


def print_medians(header: str, results: dict[str, list[tuple[float, float]]]) -> None:
    """A microbenchmark's table (median ops/s and CPU µs per request of each label's rounds),
    then the same as one JSON line."""
    summary = {}
    print(f"| {header} | ops/s | CPU µs/req |")
    print("|---|---:|---:|")
    for label, runs in results.items():
        ops = sorted(r[0] for r in runs)[len(runs) // 2]
        cpu = sorted(r[1] for r in runs)[len(runs) // 2]
        summary[label] = {"ops_per_s": round(ops), "cpu_us_per_req": round(cpu, 1)}
        print(f"| {label} | {ops:,.0f} | {cpu:.1f} |")
    print(json.dumps(summary))
