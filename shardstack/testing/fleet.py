"""`Fleet` and `AsyncFleet`: shards without the gateway, started for a test (the launcher
of `shardstack up --shards-only` in a process of its own) or attached to shards already
running, and controlled through the shards' own admin API."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit

import httpx

from gateway.shards import with_port_offset
from shard_sim.capacity import parse_capacity
from shardstack.launcher.fleet_file import FLEET_FILE_NAME, FleetDescription
from shardstack.launcher.plan import StackConfig, plan
from shardstack.launcher.supervisor import terminate_with_parent
from shardstack.testing import control
from shardstack.testing.control import Baseline, Operation, Reply, Selector
from shardstack.testing.errors import (
    FleetError,
    FleetStartError,
    InvalidRequest,
    ShardUnreachable,
)
from shardstack.testing.ports import NoFreePorts, free_port_block
from shardstack.testing.results import (
    ActiveFault,
    Decision,
    InjectedFault,
    Received,
    Shard,
)
from shardstack_kernel import topology
from shardstack_kernel.admin_token import TOKEN_ENV, new_token
from shardstack_kernel.latency import LatencyModel, parse_latency
from shardstack_kernel.validation import FieldError, InvalidInput

_T = TypeVar("_T")

# The launcher's options, named as this class's parameters in its errors.
_PARAMETERS = {
    "--shard-base-port": "base_port",
    "--shards-per-process": "shards_per_process",
    "--zones": "zones",
    "--shard-latency": "latency",
}
_POLL_S = 0.02
_STOP_GRACE_S = 30.0


@dataclass(frozen=True, slots=True)
class _Launch:
    """A fleet to start, validated."""

    shards: int
    latency: LatencyModel | None
    capacity: str | None
    zones: int | None
    seed: int | None
    base_port: int | None
    shards_per_process: int
    startup_timeout_s: float
    host: str


class _Fleet:
    """What the sync and the async fleet share: starting, stopping, the shards' table."""

    def __init__(
        self,
        shards: int = topology.SHARD_COUNT,
        *,
        latency: str | Mapping[str, Any] | None = None,
        capacity: str | Mapping[str, Any] | None = None,
        zones: int | None = None,
        seed: int | None = None,
        base_port: int | None = None,
        shards_per_process: int = 1,
        startup_timeout_s: float = 60.0,
        host: str = topology.HOST,
    ) -> None:
        """A fleet to start on `with` (or `start()`); everything is checked here, before
        any process starts: `InvalidRequest` names the parameter at fault."""
        launch = _validated(
            shards, latency, capacity, zones, seed, base_port, shards_per_process,
            startup_timeout_s, host,
        )  # fmt: skip
        self._hold(launch, None)

    def _hold(self, launch: _Launch | None, description: FleetDescription | None) -> None:
        """What a fleet holds: what to start, or the description of shards attached to."""
        self._launch = launch
        self._description = description
        self._baselines: dict[int, Baseline] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._work_dir: Path | None = None
        self._ready_by = 0.0

    @classmethod
    def attach(
        cls,
        urls: Sequence[str],
        token: str,
        *,
        admin_urls: Sequence[str] | None = None,
        zones: Sequence[str | None] | None = None,
        decision_log: Path | None = None,
    ) -> Self:
        """Shards already running (compose, `shardstack up --shards-only`, another
        process): their data URLs, in id order, and the admin token. Each admin URL is
        its data URL's port + 1000 unless given. Nothing is started or stopped."""
        if not urls:
            raise InvalidRequest.field("urls", "at least one shard")
        if admin_urls is None:
            admin_urls = [_port_moved(url, topology.ADMIN_PORT_OFFSET) for url in urls]
        for name, given in (("admin_urls", admin_urls), ("zones", zones)):
            if given is not None and len(given) != len(urls):
                raise InvalidRequest.field(name, f"{len(given)} for {len(urls)} URLs; one each")
        fleet = cls.__new__(cls)
        fleet._hold(None, None)
        fleet._description = FleetDescription.model_validate(
            {
                "shards": [
                    {"id": index, "url": url.rstrip("/"), "admin_url": admin.rstrip("/"),
                     "zone": None if zones is None else zones[index]}
                    for index, (url, admin) in enumerate(zip(urls, admin_urls, strict=True))
                ],
                "token": token,
                "decision_log": decision_log,
                "pid": 0,
            }
        )  # fmt: skip
        return fleet

    @classmethod
    def attach_file(cls, path: Path) -> Self:
        """Shards described by the fleet file `shardstack up` writes (`--fleet-file`)."""
        try:
            described = FleetDescription.read(path)
        except OSError as exc:
            raise FleetError(f"cannot read the fleet file {path}: {exc.strerror}") from None
        except ValueError as exc:
            raise FleetError(f"{path} is not a fleet file: {exc}") from None
        return cls.attach(
            [shard.url for shard in described.shards],
            described.token,
            admin_urls=[shard.admin_url for shard in described.shards],
            zones=[shard.zone for shard in described.shards],
            decision_log=described.decision_log,
        )

    def __repr__(self) -> str:
        if self._description is None:
            return f"<{type(self).__name__}: not running>"
        urls = self.urls
        return f"<{type(self).__name__}: {len(urls)} shards, {urls[0]} .. {urls[-1]}>"

    @property
    def shards(self) -> tuple[Shard, ...]:
        return tuple(
            Shard(shard.id, shard.url, shard.admin_url, shard.zone)
            for shard in self._described.shards
        )

    @property
    def urls(self) -> list[str]:
        """Each shard's data URL in id order: a service asks `GET {url}/data`."""
        return [shard.url for shard in self._described.shards]

    @property
    def token(self) -> str:
        return self._described.token

    @property
    def decision_log(self) -> Path | None:
        return self._described.decision_log

    @property
    def log_dir(self) -> Path | None:
        """Where a started fleet's processes log (kept after a failed start)."""
        return self._work_dir

    @property
    def _described(self) -> FleetDescription:
        if self._description is None:
            raise FleetError("the fleet is not running: use it in a `with` block or call start()")
        return self._description

    def _spawn(self) -> bool:
        """Start the launcher; False if there is nothing to start (started or attached).
        Spawned from the caller's own thread: the launcher dies with the thread that
        started it (PR_SET_PDEATHSIG), so never from a pool's."""
        if self._description is not None or self._process is not None:
            return False
        launch = self._launch
        assert launch is not None  # an attached fleet is described from the start
        self._work_dir = Path(tempfile.mkdtemp(prefix="shardstack-fleet-"))
        base_port = launch.base_port
        if base_port is None:
            try:
                base_port = free_port_block(launch.shards, topology.ADMIN_PORT_OFFSET, launch.host)
            except NoFreePorts as exc:
                raise FleetStartError(str(exc)) from None
        with (self._work_dir / "launcher.log").open("wb") as log:
            self._process = subprocess.Popen(
                _command(launch, base_port, self._work_dir, self._work_dir / FLEET_FILE_NAME),
                env={**os.environ, TOKEN_ENV: new_token()},
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=functools.partial(terminate_with_parent, os.getpid()),
            )  # fmt: skip
        self._ready_by = time.monotonic() + launch.startup_timeout_s + 10.0
        return True

    def _ready(self) -> bool:
        """Whether the spawned shards are all ready (the launcher wrote the fleet file);
        `FleetStartError`, with nothing left running, if they cannot be."""
        assert self._process is not None
        assert self._work_dir is not None
        fleet_file = self._work_dir / FLEET_FILE_NAME
        if fleet_file.exists():
            self._description = FleetDescription.read(fleet_file)
            return True
        if self._process.poll() is not None:
            raise FleetStartError(self._why_not_started())
        if time.monotonic() > self._ready_by:
            self._stop_processes()
            assert self._launch is not None
            raise FleetStartError(
                f"the shards were not ready after {self._launch.startup_timeout_s:g}s "
                f"(logs: {self._work_dir})"
            )
        return False

    def _why_not_started(self) -> str:
        assert self._work_dir is not None
        lines = (self._work_dir / "launcher.log").read_text(errors="replace").strip().splitlines()
        said = lines[-1].removeprefix("shardstack: ") if lines else "no output"
        self._process = None
        return f"the shards did not start: {said} (logs: {self._work_dir})"

    def _stop_processes(self) -> None:
        process, self._process = self._process, None
        self._description = None
        self._baselines = None
        if process is None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=_STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if process.returncode == 0 and self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)
            self._work_dir = None

    def _headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


def _validated(
    shards: int,
    latency: str | Mapping[str, Any] | None,
    capacity: str | Mapping[str, Any] | None,
    zones: int | None,
    seed: int | None,
    base_port: int | None,
    shards_per_process: int,
    startup_timeout_s: float,
    host: str,
) -> _Launch:
    if type(shards) is not int or not 1 <= shards <= topology.ADMIN_PORT_OFFSET:
        raise InvalidRequest.field(
            "shards", f"{shards!r} is not a whole number from 1 to {topology.ADMIN_PORT_OFFSET}"
        )
    if not 1 <= startup_timeout_s <= 600:
        raise InvalidRequest.field("startup_timeout_s", "must be from 1 to 600 seconds")
    try:
        model = None if latency is None else parse_latency(latency)
    except InvalidInput as exc:
        raise InvalidRequest(control.named("latency", exc.errors)) from None
    try:
        limits = parse_capacity(capacity)
    except InvalidInput as exc:
        raise InvalidRequest(control.named("capacity", exc.errors)) from None
    capacity_spec = None if limits is None else limits.spec()
    try:
        plan(
            StackConfig(
                shards=shards,
                host=host,
                shard_base_port=topology.SHARD_BASE_PORT if base_port is None else base_port,
                shards_per_process=shards_per_process,
                latency=model,
                capacity=limits,
                seed=seed,
                zones=zones,
                gateway=False,
            )
        )
    except InvalidInput as exc:
        raise InvalidRequest(
            FieldError(_PARAMETERS.get(error.field, error.field), error.reason)
            for error in exc.errors
        ) from None
    return _Launch(
        shards, model, capacity_spec, zones, seed, base_port, shards_per_process,
        startup_timeout_s, host,
    )  # fmt: skip


def _command(launch: _Launch, base_port: int, work_dir: Path, fleet_file: Path) -> list[str]:
    command = [
        sys.executable, "-m", "shardstack", "up", "--shards-only", "--no-prometheus",
        "--shards", str(launch.shards), "--host", launch.host,
        "--shard-base-port", str(base_port),
        "--shards-per-process", str(launch.shards_per_process),
        "--startup-timeout", str(launch.startup_timeout_s),
        "--log-dir", str(work_dir), "--fleet-file", str(fleet_file),
        "--decision-log", str(work_dir / "decisions.jsonl"),
    ]  # fmt: skip
    if launch.latency is not None:
        command += ["--latency", launch.latency.spec()]
    if launch.capacity is not None:
        command += ["--capacity", launch.capacity]
    if launch.seed is not None:
        command += ["--seed", str(launch.seed)]
    if launch.zones is not None:
        command += ["--zones", str(launch.zones)]
    return command


def _port_moved(url: str, offset: int) -> str:
    """The gateway's admin URL of a shard, for a URL that names its port."""
    if urlsplit(url).port is None:
        raise InvalidRequest.field("urls", f"{url!r} names no port; give admin_urls")
    return with_port_offset(url.rstrip("/"), offset)


def _reply(call: control.Call, response: httpx.Response) -> Reply:
    try:
        body = response.json()
    except ValueError:
        body = None
    return Reply(call, response.status_code, body)


def _unreachable(call: control.Call, exc: httpx.HTTPError) -> ShardUnreachable:
    return ShardUnreachable(
        f"shard {call.shard.id}'s admin port at {call.shard.admin_url} did not answer "
        f"{call.method} {call.path}: {exc or type(exc).__name__}"
    )


class Fleet(_Fleet):
    """Shards for a test, controlled from it:

    ```python
    with Fleet(shards=5, latency="fixed:10") as fleet:
        service = MyService(fleet.urls)
        fleet.inject(3, "latency", latency="fixed:800", duration_s=30)
        ...
    ```

    Selectors are as the gateway's: "all", "0,3,5-7", "zone:z1", an id, a list of ids,
    or {"random": k}. Bad input raises `InvalidRequest` naming the field before any
    shard is asked; a shard's 422 raises it too.
    """

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the shards (a started or attached fleet: nothing to do); `FleetStartError`
        if they cannot start, with nothing left running."""
        if self._spawn():
            while not self._ready():
                time.sleep(_POLL_S)
        if self._baselines is None:
            self._baselines = self._run(control.baseline(self.shards))

    def stop(self) -> None:
        """Stop the shards this fleet started (an attached fleet's keep running)."""
        self._stop_processes()

    def inject(self, selector: Selector, kind: str, /, **fields: Any) -> InjectedFault:
        """Add a fault of `kind` with its `fields` (e.g. `latency="fixed:300"`,
        `probability=0.5`, `duration_s=30`) to every selected shard, under one id."""
        return self._run(control.inject(self.shards, selector, kind, fields))

    def remove(self, fault_id: str, selector: Selector = "all") -> int:
        """Remove a fault by id; the number of shards that held it."""
        return self._run(control.remove(self.shards, fault_id, selector))

    def clear(self, selector: Selector = "all") -> int:
        """Remove every fault from the selected shards; how many there were."""
        return self._run(control.clear(self.shards, selector))

    def faults(self, selector: Selector = "all") -> dict[int, tuple[ActiveFault, ...]]:
        return self._run(control.faults(self.shards, selector))

    def set_latency(self, selector: Selector, latency: str | Mapping[str, Any]) -> None:
        """Replace the latency model (`"fixed:10"`, `"lognormal:5,40"`, a mapping)."""
        self._run(control.set_latency(self.shards, selector, latency))

    def set_capacity(self, selector: Selector, capacity: str | Mapping[str, Any] | None) -> None:
        """Finite capacity (`"workers=2,queue=2,overflow=503"`); None unbounds."""
        self._run(control.set_capacity(self.shards, selector, capacity))

    def received(self, selector: Selector = "all") -> dict[int, Received]:
        """What each selected shard's data port took since the last reset, by shard id."""
        return self._run(control.received(self.shards, selector))

    def forget_received(self, selector: Selector = "all") -> None:
        self._run(control.forget_received(self.shards, selector))

    def decisions(self) -> list[Decision]:
        """Every decision the shards logged, once the last requests' have been written."""
        time.sleep(control.DECISIONS_SETTLE_S)
        return control.decisions(_read_log(self.decision_log))

    def reset(self) -> None:
        """Every shard as the fleet found it: no faults, its latency and capacity back,
        nothing received (the pytest plugin does this after each test)."""
        self._run(control.reset(self.shards, self._found()))

    def _found(self) -> dict[int, Baseline]:
        if self._baselines is None:
            self._baselines = self._run(control.baseline(self.shards))
        return self._baselines

    def _run(self, operation: Operation[_T]) -> _T:
        # One after another: on a few cores, threads made 20 shards' reset no faster
        # (127 against 135 ms for its 80 calls).
        replies = []
        with httpx.Client(headers=self._headers(), timeout=10.0, trust_env=False) as client:
            for call in operation.calls:
                url = call.shard.admin_url + call.path
                try:
                    response = client.request(call.method, url, content=call.content)
                except httpx.HTTPError as exc:
                    raise _unreachable(call, exc) from None
                replies.append(_reply(call, response))
        return operation.finish(replies)


class AsyncFleet(_Fleet):
    """`Fleet` for async tests: `async with AsyncFleet(...) as fleet`, every control
    method awaited, the calls to the selected shards made at once."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._spawn():
            # A file another process writes: there is no event to await.
            while not self._ready():  # noqa: ASYNC110
                await asyncio.sleep(_POLL_S)
        if self._baselines is None:
            self._baselines = await self._run(control.baseline(self.shards))

    async def stop(self) -> None:
        await asyncio.to_thread(self._stop_processes)

    async def inject(self, selector: Selector, kind: str, /, **fields: Any) -> InjectedFault:
        return await self._run(control.inject(self.shards, selector, kind, fields))

    async def remove(self, fault_id: str, selector: Selector = "all") -> int:
        return await self._run(control.remove(self.shards, fault_id, selector))

    async def clear(self, selector: Selector = "all") -> int:
        return await self._run(control.clear(self.shards, selector))

    async def faults(self, selector: Selector = "all") -> dict[int, tuple[ActiveFault, ...]]:
        return await self._run(control.faults(self.shards, selector))

    async def set_latency(self, selector: Selector, latency: str | Mapping[str, Any]) -> None:
        await self._run(control.set_latency(self.shards, selector, latency))

    async def set_capacity(
        self, selector: Selector, capacity: str | Mapping[str, Any] | None
    ) -> None:
        await self._run(control.set_capacity(self.shards, selector, capacity))

    async def received(self, selector: Selector = "all") -> dict[int, Received]:
        return await self._run(control.received(self.shards, selector))

    async def forget_received(self, selector: Selector = "all") -> None:
        await self._run(control.forget_received(self.shards, selector))

    async def decisions(self) -> list[Decision]:
        await asyncio.sleep(control.DECISIONS_SETTLE_S)
        return control.decisions(await asyncio.to_thread(_read_log, self.decision_log))

    async def reset(self) -> None:
        if self._baselines is None:
            self._baselines = await self._run(control.baseline(self.shards))
        await self._run(control.reset(self.shards, self._baselines))

    async def _run(self, operation: Operation[_T]) -> _T:
        async with httpx.AsyncClient(
            headers=self._headers(), timeout=10.0, trust_env=False
        ) as client:

            async def one(call: control.Call) -> Reply:
                url = call.shard.admin_url + call.path
                try:
                    response = await client.request(call.method, url, content=call.content)
                except httpx.HTTPError as exc:
                    raise _unreachable(call, exc) from None
                return _reply(call, response)

            replies = await asyncio.gather(*(one(call) for call in operation.calls))
        return operation.finish(list(replies))


def _read_log(path: Path | None) -> str:
    if path is None:
        raise FleetError("this fleet keeps no decision log (attach it with decision_log=PATH)")
    return path.read_text(errors="replace")
