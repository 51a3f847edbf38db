"""Per-request faults: `X-Shardstack-Fault: SELECTOR KIND [key=value ...][; ...]` on one
aggregate request carries those faults to the shards it names, for that request only.

    X-Shardstack-Fault: 3 latency latency=fixed:300; 5-7 error status=503
    X-Shardstack-Fault: zone:z1 error status=503 k_of_n=2

Honoured only when the gateway allows it (GATEWAY_ALLOW_REQUEST_FAULTS) and the client
sends the admin token; the gateway forwards each shard its part with the client's own
`Authorization`, which the shard checks again.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.shards import Shard, select, with_selection
from shardstack_kernel.faults import REQUEST_FAULT_HEADER, parse_request_fault
from shardstack_kernel.validation import InvalidInput

MAX_FAULT_HEADER_CHARS = 4096


def shard_headers(
    header: str, shards: Sequence[Shard], authorization: str
) -> dict[int, dict[str, str]]:
    """The headers to send each named shard; `InvalidInput` naming the header if it is bad."""
    parts: dict[int, list[str]] = {}
    for item in header.split(";"):
        words = item.split()
        if len(words) < 2:
            raise InvalidInput.field(
                REQUEST_FAULT_HEADER, f"{item.strip()!r} is not 'SELECTOR KIND [key=value ...]'"
            )
        targets = select(shards, words[0], field=REQUEST_FAULT_HEADER)
        fault = parse_request_fault(words[1:])
        if fault.k_of_n is not None:
            fault = with_selection(fault, targets, REQUEST_FAULT_HEADER)
        text = fault.words() if fault.k_of_n is not None else " ".join(words[1:])
        for shard in targets:
            parts.setdefault(shard.id, []).append(text)
    return {
        shard_id: {REQUEST_FAULT_HEADER: "; ".join(faults), "authorization": authorization}
        for shard_id, faults in parts.items()
    }
