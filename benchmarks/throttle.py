"""Client-side adaptive throttling measured (docs/guides/resilience.md, "Overload,
breakers and retries"): two experiments of docs/benchmarks.md, each with
`GATEWAY_THROTTLE_K` off and at 2, one run each, printed as that page's tables.

    .venv/bin/python -m benchmarks.throttle             # about 2 minutes on 2 cores
    .venv/bin/python -m benchmarks.throttle -d 10s

- finite capacity with permits ten times the shards' (scenarios/capacity-slowdown.yaml,
  GATEWAY_SEMAPHORE_SIZE=400): the shards refuse what their queues cannot hold;
- a zone that browns out (scenarios/zone-brownout.yaml), hedging on, 10 % budgets: a
  quarter of the shards answer 60 % of their calls with a 503.
"""

from __future__ import annotations

import argparse

from benchmarks import page
from benchmarks.experiments import (
    BROWNOUT_STACK,
    CAPACITY_STACK,
    NO_BREAKERS,
    open_loop,
    under_scenario,
)

THROTTLE = {"off": {}, "k=2": {"GATEWAY_THROTTLE_K": "2"}}
LABELS = {label: f"throttling {label}" for label in THROTTLE}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-d", "--duration", default="20s", help="each load's length (20s)")
    duration = parser.parse_args().duration
    experiments = (
        ("finite capacity, semaphore 400", "capacity-slowdown.yaml", CAPACITY_STACK,
         {**NO_BREAKERS, "GATEWAY_SEMAPHORE_SIZE": "400"}, 20),
        ("zone brown-out, 10 % budgets", "zone-brownout.yaml", BROWNOUT_STACK,
         {**NO_BREAKERS, "GATEWAY_HEDGE": "true"}, 40),
    )  # fmt: skip
    for title, scenario, stack, env, rate in experiments:
        runs = {
            label: under_scenario(scenario, stack, {**env, **throttle}, open_loop(rate, duration))
            for label, throttle in THROTTLE.items()
        }
        print(f"\n{title}: {runs['off']['command']}")
        print(page.backend_table(runs, LABELS))


if __name__ == "__main__":
    main()
