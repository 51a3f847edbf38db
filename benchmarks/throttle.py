"""Client-side adaptive throttling measured (README, "Overload, breakers and retries"):
two experiments of docs/benchmarks.md, each with `GATEWAY_THROTTLE_K` off and at 2, one
run each, printed as that page's tables.

    .venv/bin/python benchmarks/throttle.py             # about 2 minutes on 2 cores
    .venv/bin/python benchmarks/throttle.py -d 10s

- finite capacity with permits ten times the shards' (scenarios/capacity-slowdown.yaml,
  GATEWAY_SEMAPHORE_SIZE=400): the shards refuse what their queues cannot hold;
- a zone that browns out (scenarios/zone-brownout.yaml), hedging on, 10 % budgets: a
  quarter of the shards answer 60 % of their calls with a 503.
"""

from __future__ import annotations

import argparse

import page
from experiments import BROWNOUT_STACK, CAPACITY_STACK, NO_BREAKERS, open_loop, under_scenario

THROTTLE = {"off": {}, "k=2": {"GATEWAY_THROTTLE_K": "2"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-d", "--duration", default="20s", help="each load's length (20s)")
    duration = parser.parse_args().duration
    oversized = {**NO_BREAKERS, "GATEWAY_SEMAPHORE_SIZE": "400"}
    capacity = {
        label: under_scenario("capacity-slowdown.yaml", CAPACITY_STACK, {**oversized, **env},
                              open_loop(20, duration))
        for label, env in THROTTLE.items()
    }  # fmt: skip
    hedged = {**NO_BREAKERS, "GATEWAY_HEDGE": "true"}
    brownout = {
        label: under_scenario("zone-brownout.yaml", BROWNOUT_STACK, {**hedged, **env},
                              open_loop(40, duration))
        for label, env in THROTTLE.items()
    }  # fmt: skip
    labels = {label: f"throttling {label}" for label in THROTTLE}
    print(f"finite capacity, semaphore 400: {capacity['off']['command']}")
    print(page.backend_table(capacity, labels))
    print(f"\nzone brown-out, 10 % budgets: {brownout['off']['command']}")
    print(page.backend_table(brownout, labels))


if __name__ == "__main__":
    main()
