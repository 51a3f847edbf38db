"""Watching a running stack: its /metrics parsed, and load held on it from client threads."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

import httpx

from shardstack.bench.exposition import Samples


def scrape(url: str) -> Samples:
    response = httpx.get(f"{url}/metrics", timeout=10, trust_env=False)
    response.raise_for_status()
    return Samples.parse(response.text)


def wait_for(
    url: str, condition: Callable[[Samples], bool], timeout_s: float, what: str
) -> Samples:
    """Scrape until `condition` holds; fail with the last scrape's gauges named `what`..."""
    deadline = time.monotonic() + timeout_s
    while True:
        samples = scrape(url)
        if condition(samples):
            return samples
        if time.monotonic() > deadline:
            seen = {
                name + str(dict(labels)): value
                for (name, labels), value in samples.values.items()
                if name.startswith(what) and not name.endswith(("_bucket", "_sum", "_count"))
            }
            raise AssertionError(f"not seen within {timeout_s}s: {what}; last scrape: {seen}")
        time.sleep(0.05)


@dataclass
class HeldLoad:
    """`threads` clients, each sending GET `url` one after another until the block ends
    (or `max_s` passes, or `max_requests` are sent). Outcomes are counted by status code,
    or by exception name for a request that got no answer. Each request opens a new
    connection, so gunicorn's workers share the load rather than keep their first clients.
    `from_gateway` counts the answers the gateway itself gave (they carry its X-Request-Id),
    apart from a proxy's own error pages in front of it."""

    url: str
    threads: int
    timeout_s: float = 30.0
    max_s: float = 60.0
    max_requests: int = 10_000
    outcomes: Counter[str] = field(default_factory=Counter)
    from_gateway: Counter[str] = field(default_factory=Counter)
    # (sent, answered, outcome) per request, on time.monotonic()
    records: list[tuple[float, float, str]] = field(default_factory=list)
    # the first few answers that were not 200, as sent, for a failing test to show
    refusals: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _sent: int = 0

    def __enter__(self) -> HeldLoad:
        deadline = time.monotonic() + self.max_s
        for _ in range(self.threads):
            self.add_thread(deadline)
        return self

    def add_thread(self, deadline: float | None = None) -> None:
        end = deadline or time.monotonic() + self.max_s
        worker = threading.Thread(target=self._run, args=(end,), daemon=True)
        self._workers.append(worker)
        worker.start()

    def stop_sending(self) -> None:
        self._stop.set()

    def stop(self) -> None:
        """Send nothing new and wait for the requests in flight to be answered."""
        self.stop_sending()
        self.finish()

    def finish(self) -> None:
        """Wait until the clients are done: every request sent or a bound reached."""
        for worker in self._workers:
            worker.join(self.timeout_s + self.max_s)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self, deadline: float) -> None:
        fresh = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(timeout=self.timeout_s, trust_env=False, limits=fresh) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                with self._lock:
                    if self._sent >= self.max_requests:
                        return
                    self._sent += 1
                sent = time.monotonic()
                body = ""
                gateway = False
                try:
                    answer = client.get(self.url)
                    outcome = str(answer.status_code)
                    body = "" if answer.status_code == 200 else answer.text
                    gateway = "x-request-id" in answer.headers
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                with self._lock:
                    if body and len(self.refusals) < 5:
                        self.refusals.append(f"{outcome}: {body[:2000]}")
                    self.outcomes[outcome] += 1
                    self.from_gateway[outcome] += gateway
                    self.records.append((sent, time.monotonic(), outcome))
