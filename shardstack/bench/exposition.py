"""Prometheus' text exposition read once, for `shardstack bench`, the benchmarks and the
tests: every sample of a scrape by name and labels."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Samples:
    """One scrape: every sample by its name (`_total`, `_bucket` included) and labels."""

    values: dict[tuple[str, frozenset[tuple[str, str]]], float]

    @classmethod
    def parse(cls, text: str) -> Samples:
        return cls(
            {
                (sample.name, frozenset(sample.labels.items())): sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
            }
        )

    def get(self, name: str, **labels: str) -> float:
        """The one series of `name` with exactly `labels`; KeyError if it is not exported."""
        return self.values[name, frozenset(labels.items())]

    def total(self, name: str, **labels: str) -> float:
        """The sum over every series of `name` whose labels include `labels`."""
        wanted = set(labels.items())
        return sum(
            value
            for (sample_name, sample_labels), value in self.values.items()
            if sample_name == name and wanted <= sample_labels
        )

    def by_label(self, name: str, label: str) -> dict[str, float]:
        """Each value of `label` on the series of `name`, with its sum over the others."""
        found: dict[str, float] = {}
        for (sample_name, sample_labels), value in self.values.items():
            labels = dict(sample_labels)
            if sample_name == name and label in labels:
                found[labels[label]] = found.get(labels[label], 0.0) + value
        return found

    def exported(self, name: str) -> bool:
        return any(sample_name == name for sample_name, _ in self.values)
