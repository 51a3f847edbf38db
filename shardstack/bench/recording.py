"""What a load run saw: latencies in HDR histograms, answers by status, failures by kind."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

# Microseconds, 1 µs to an hour, 3 significant digits: HdrHistogram's usual setting.
_LOWEST_US, _HIGHEST_US, _DIGITS = 1, 3_600_000_000, 3
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def new_histogram() -> HdrHistogram:
    return HdrHistogram(_LOWEST_US, _HIGHEST_US, _DIGITS)


@dataclass
class Recording:
    """Filled in as answers arrive; `latency` holds every answer, `ok_latency` the 2xx,
    `shed_latency` the 503s (load shed by the server)."""

    latency: HdrHistogram = field(default_factory=new_histogram)
    ok_latency: HdrHistogram = field(default_factory=new_histogram)
    shed_latency: HdrHistogram = field(default_factory=new_histogram)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    partial: int = 0
    elapsed_s: float = 0.0
    warmup_sent: int = 0  # requests sent before recording began

    def answered(self, status: int, seconds: float, partial: bool) -> None:
        value = micros(seconds)
        self.latency.record_value(value)
        if 200 <= status < 300:
            self.ok_latency.record_value(value)
        elif status == 503:
            self.shed_latency.record_value(value)
        self.statuses[status] += 1
        self.partial += partial

    def failed(self, kind: str) -> None:
        self.failures[kind] += 1

    @property
    def sent(self) -> int:
        return self.answers + sum(self.failures.values())

    @property
    def answers(self) -> int:
        return sum(self.statuses.values())

    @property
    def ok(self) -> int:
        return sum(count for status, count in self.statuses.items() if 200 <= status < 300)

    def errors(self) -> dict[str, int]:
        """Everything that is not a complete 2xx answer, by kind."""
        kinds = {
            f"HTTP {status}": n for status, n in self.statuses.items() if not 200 <= status < 300
        }
        if self.partial:
            kinds["partial"] = self.partial
        kinds.update(self.failures)
        return dict(sorted(kinds.items()))

    def percentiles_ms(self, histogram: HdrHistogram | None = None) -> dict[float, float]:
        """Of every answer, or of those in `histogram` (`ok_latency`, `shed_latency`)."""
        return percentiles_ms(histogram or self.latency)

    def throughput(self) -> float:
        """Complete 2xx answers per second."""
        return (self.ok - self.partial) / self.elapsed_s if self.elapsed_s else 0.0


def percentiles_ms(histogram: HdrHistogram) -> dict[float, float]:
    """`PERCENTILES` of `histogram` in milliseconds; NaN when it is empty."""
    if histogram.get_total_count() == 0:
        return {p: float("nan") for p in PERCENTILES}
    return {p: histogram.get_value_at_percentile(p) / 1000.0 for p in PERCENTILES}


def cdf_ms(histogram: HdrHistogram) -> list[tuple[float, float]]:
    """(latency ms, fraction at or below) at every recorded value, for plots."""
    total = histogram.get_total_count()
    if total == 0:
        return []
    return [
        (item.value_iterated_to / 1000.0, item.total_count_to_this_value / total)
        for item in histogram.get_recorded_iterator()
    ]


def micros(seconds: float) -> int:
    """`seconds` as the histograms' unit, clamped to what they hold."""
    return min(max(_LOWEST_US, round(seconds * 1_000_000)), _HIGHEST_US)
