"""`shardstack bench overload`: each variant loaded to its saturation, then offered two
and ten times that rate; how much of its peak it still serves, how fast it serves it,
and how fast it refuses the rest."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from shardstack.bench.compare import TickFactory
from shardstack.bench.lab import lab
from shardstack.bench.load import LoadPlan
from shardstack.bench.measure import Measurement, measure
from shardstack.bench.variants import Variant
from shardstack.launcher.plan import Stack

MULTIPLES = (2.0, 10.0)
# Open-loop runs may hold this many requests at once: enough that the generator never
# caps the load while a collapsing server lets requests pile up until they time out.
OPEN_LOOP_CONNECTIONS = 4096


@dataclass(frozen=True, slots=True)
class OverloadRun:
    variant: str
    peak: Measurement  # closed loop: the saturation throughput
    overloaded: tuple[Measurement, ...]  # open loop at each of MULTIPLES times the peak

    def of_peak(self, measurement: Measurement) -> float | None:
        peak = self.peak.recording.throughput()
        return measurement.recording.throughput() / peak if peak else None


async def overload(
    stack: Stack,
    variants: Sequence[Variant],
    saturation: LoadPlan,
    log_dir: Path,
    echo: Callable[[str], None],
    ticks: TickFactory,
) -> list[OverloadRun]:
    """Start the shards once; per variant, measure its peak with `saturation` (a closed
    loop), then offer it each multiple of that peak in an open loop."""
    specs = [variant.spec(stack) for variant in variants]
    # Kept-alive connections stay with the worker that accepted them, and gunicorn's
    # workers accept unevenly (13 and 3 of 16, measured): the peak would be one worker's.
    peak_plan = dataclasses.replace(saturation, keep_alive=False)
    runs = []
    async with lab(stack, specs[0], log_dir, echo) as running:
        for variant, spec in zip(variants, specs, strict=True):
            async with running.serving(spec) as server:
                echo(f"{variant.name}: {variant.description}; peak: {peak_plan.describe()}")
                peak = await measure(
                    variant.name, peak_plan, server, ticks(f"{variant.name} peak"), running.shards
                )
                rate = peak.recording.throughput()
                overloaded = []
                for multiple in MULTIPLES if rate else ():
                    label = f"{variant.name} {multiple:g}x"
                    plan = dataclasses.replace(
                        saturation, rate=multiple * rate, connections=OPEN_LOOP_CONNECTIONS
                    )
                    echo(f"{label}: {plan.describe()}")
                    overloaded.append(
                        await measure(label, plan, server, ticks(label), running.shards)
                    )
                runs.append(OverloadRun(variant.name, peak, tuple(overloaded)))
    return runs
