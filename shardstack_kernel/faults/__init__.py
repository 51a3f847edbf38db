"""The fault vocabulary: kinds a shard can inject (one module each under `kinds/`), how
they are written, and when they are in effect. The gateway validates against it; the
shards act on it (shard_sim/effects/, one module per kind).

A fault is written as JSON (`{"kind": "error", "status": 503, "probability": 0.5}`) or,
on the command line and in the per-request header, as words: `error status=503`. Any
fault can flap: `period_s=10 on_s=3` keeps it on for 3 s of every 10 s.

Several faults can be active at once. For each request, every active fault that is on
rolls its probability; those that fire act in this order:

1. `latency`: delays add up;
2. `error`: replaces the answer's status and body;
3. `hang`, `reset`, `malformed`, `slow_body`: the first of these (in this order) takes
   over how the answer is delivered; later ones in the list do not fire.

`down` acts on the data listener rather than on requests.
"""

from shardstack_kernel.faults.kind import COMMON_FIELDS, FAULT_ID_PATTERN, Fault
from shardstack_kernel.faults.kinds import FAULT_KINDS
from shardstack_kernel.faults.parsing import (
    REQUEST_FAULT_HEADER,
    parse_fault,
    parse_fault_words,
    parse_request_fault,
)

__all__ = [
    "COMMON_FIELDS",
    "FAULT_ID_PATTERN",
    "FAULT_KINDS",
    "REQUEST_FAULT_HEADER",
    "Fault",
    "parse_fault",
    "parse_fault_words",
    "parse_request_fault",
]
