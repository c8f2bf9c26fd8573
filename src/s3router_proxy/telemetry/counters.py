"""Metrics whose values are plain Python numbers, exposed in prometheus_client's format.

One proxy process serves from one asyncio event loop, so its updates never race: a counter is
a float added to, a histogram a list of bucket counts found by `bisect`. prometheus_client's
own metrics take a lock per update and walk the buckets in Python, a few percent of the CPU of
a small request. These turn into the same exposition only when `/metrics` is scraped, through a
collector per metric in prometheus_client's registry.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar

import prometheus_client.metrics
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


# ---------------------------------------------------------------------------------------------
# Plain values: what one label combination holds, updated with no lock (event loop only).


class CounterValue:
    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()

    def inc(self, amount: float = 1) -> None:
        if amount < 0:  # as prometheus_client refuses it: a counter never goes down
            raise ValueError("counters can only be incremented by non-negative amounts")
        self.value += amount


class GaugeValue:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        self.value += amount

    def dec(self, amount: float = 1) -> None:
        self.value -= amount

    def set(self, value: float) -> None:
        self.value = float(value)


class HistogramValue:
    __slots__ = ("bounds", "counts", "created", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds  # finite upper bounds, ascending
        self.counts = [0] * (len(bounds) + 1)  # per bucket, not cumulative; last is +Inf
        self.sum = 0.0
        self.created = time.time()

    def observe(self, value: float) -> None:
        # A value equal to a bound belongs to that bound's bucket (`le`), as bisect_left puts it.
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value


def _created_series() -> bool:
    """Whether prometheus_client writes `_created` samples now: its own metrics read this flag
    (PROMETHEUS_DISABLE_CREATED_SERIES, `disable_created_metrics()`) when collected."""
    return bool(getattr(prometheus_client.metrics, "_use_created", True))


class PlainMetric(Collector):
    """A metric whose children are plain values; a collector of its own family at scrape time.

    Made like prometheus_client's `Counter(name, documentation, labelnames)` and registered in
    `registry` (the default one unless told). Without label names the metric is its own only
    child: `SHED.inc()` goes straight to the value's bound method.
    """

    family_type: ClassVar[type[Metric]]
    reserved_labels: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        for label in self.reserved_labels.intersection(self.labelnames):
            raise ValueError(f"{name}: the label {label!r} is reserved")
        self.children: dict[tuple[str, ...], Any] = {}
        if not self.labelnames:
            only = self.labels()
            for method in ("inc", "dec", "set", "observe"):
                if hasattr(only, method):
                    setattr(self, method, getattr(only, method))
        if registry is not None:
            registry.register(self)

    def new_value(self) -> Any:
        raise NotImplementedError

    def labels(self, *values: object, **named: object) -> Any:
        """The child for these label values (positional, or all by name), made on first use."""
        if named:
            if values or set(named) != set(self.labelnames):
                raise ValueError(f"{self.name}: label names are {self.labelnames}")
            values = tuple(named[name] for name in self.labelnames)
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name}: incorrect label count, expected {self.labelnames}")
        key = tuple(str(value) for value in values)
        found = self.children.get(key)
        if found is None:
            found = self.children[key] = self.new_value()
        return found

    def family(self, *, samples: bool = True) -> Metric:
        family = self.family_type(self.name, self.documentation, labels=self.labelnames)
        if samples:
            created = _created_series()
            for key, value in list(self.children.items()):
                self.add_samples(family, key, value, created)
        return family

    def add_samples(self, family: Any, key: tuple[str, ...], value: Any, created: bool) -> None:
        """One child's samples, `_created` among them when `created`."""
        raise NotImplementedError

    def collect(self) -> Iterator[Metric]:
        yield self.family()

    def describe(self) -> Iterator[Metric]:
        yield self.family(samples=False)


class PlainCounter(PlainMetric):
    family_type = CounterMetricFamily

    def new_value(self) -> CounterValue:
        return CounterValue()

    def add_samples(
        self, family: Any, key: tuple[str, ...], value: CounterValue, created: bool
    ) -> None:
        family.add_metric(key, value.value, created=value.created if created else None)


class PlainGauge(PlainMetric):
    family_type = GaugeMetricFamily

    # `multiprocess_mode` is accepted like Gauge's; one process has one value.
    def __init__(self, *args: Any, multiprocess_mode: str = "all", **named: Any) -> None:
        super().__init__(*args, **named)

    def new_value(self) -> GaugeValue:
        return GaugeValue()

    def add_samples(
        self, family: Any, key: tuple[str, ...], value: GaugeValue, created: bool
    ) -> None:
        family.add_metric(key, value.value)  # a gauge has no `_created` sample


class PlainHistogram(PlainMetric):
    family_type = HistogramMetricFamily
    reserved_labels = frozenset({"le"})  # the buckets' own label

    def __init__(
        self, name: str, *args: Any, buckets: Sequence[float] = LATENCY_BUCKETS, **named: Any
    ) -> None:
        bounds = [float(bound) for bound in buckets]
        if bounds and bounds[-1] == float("inf"):
            bounds.pop()
        if not bounds or bounds != sorted(bounds):
            raise ValueError(f"{name}: buckets must be ascending, got {buckets!r}")
        self.bounds = tuple(bounds)
        self.les = [floatToGoString(bound) for bound in self.bounds] + ["+Inf"]
        super().__init__(name, *args, **named)

    def new_value(self) -> HistogramValue:
        return HistogramValue(self.bounds)

    def add_samples(
        self, family: Any, key: tuple[str, ...], value: HistogramValue, created: bool
    ) -> None:
        buckets = []
        total = 0
        for le, count in zip(self.les, list(value.counts), strict=True):
            total += count
            buckets.append((le, float(total)))
        family.add_metric(key, buckets, value.sum)
        if created:
            labels = dict(zip(self.labelnames, key, strict=True))
            family.samples.append(Sample(f"{self.name}_created", labels, value.created))
