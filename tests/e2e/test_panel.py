"""The browser panel (`/ui`) in real Chromium (Debian's, driven by Playwright), against a
real `shardstack up`: tiles, faults through the form, the token, a shard going down and
a gateway that restarts. Any JavaScript error on the page fails the test."""

from __future__ import annotations

import os
import re
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Error,
    Locator,
    Page,
    expect,
    sync_playwright,
)

from tests.e2e.stack import RunningStack, StartStack, get, running_stack, wait_until_up
from tests.support import wait_until

SHARDS = 20
# The promise: what a click or a failure changes shows within 3 s.
SHOWN_WITHIN_S = 3.0


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it")
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    return found


class Panel:
    """One browser tab on the panel, with every JavaScript error it raises kept."""

    def __init__(self, page: Page, url: str) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", self._uncaught)
        page.on("console", self._console)
        page.goto(f"{url}/ui")

    def _console(self, message: ConsoleMessage) -> None:
        # The browser logs each failed or refused request itself; those are not the page's.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def _uncaught(self, error: Error) -> None:
        self.errors.append(f"uncaught: {error}")

    def tile(self, shard: int) -> Locator:
        return self.page.locator(f'.tile[data-shard="{shard}"]')

    def use_token(self, token: str) -> None:
        self.page.fill("#token", token)
        self.page.click("#token-form button[type=submit]")

    def inject(self, shards: str, kind: str, **fields: str) -> None:
        self.page.fill("#f-shards", shards)
        self.page.select_option("#f-kind", kind)
        for name, value in fields.items():
            self.page.fill(f"#f-{name}", value)
        self.page.click("#inject")

    def message(self) -> str:
        return str(self.page.text_content("#message") or "")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = _chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def _shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with running_stack(tmp_path_factory.mktemp("stack"), "--latency", "fixed:1", shards=4) as up:
        yield up


@pytest.fixture
def shared(_shared: RunningStack) -> Iterator[RunningStack]:
    """The module's stack (4 shards, fixed:1) for tests that kill and restart nothing; each
    test's faults are cleared after it."""
    yield _shared
    cleared = httpx.delete(f"{_shared.gateway_url}/admin/faults", headers=_shared.admin_headers())
    assert cleared.status_code == 200, cleared.text


OpenPanel = Callable[[RunningStack], Panel]


@pytest.fixture
def panel_on(browser: Browser) -> Iterator[OpenPanel]:
    panels: list[Panel] = []

    def open_panel(stack: RunningStack) -> Panel:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        panel = Panel(page, stack.gateway_url)
        panels.append(panel)
        return panel

    yield open_panel
    for panel in panels:
        panel.page.context.close()  # the browser is the module's; its pages are the test's
    for panel in panels:
        assert panel.errors == [], f"JavaScript errors on the panel: {panel.errors}"


def _token(stack: RunningStack) -> str:
    return stack.admin_headers()["authorization"].removeprefix("Bearer ")


def _faults_listed(stack: RunningStack) -> str:
    listed = stack.cli("fault", "list")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout


class _Load:
    """Aggregates sent back to back by `clients` threads until stopped (at most `limit_s`)."""

    def __init__(self, url: str, clients: int = 8, limit_s: float = 120.0) -> None:
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(url, limit_s), daemon=True)
            for _ in range(clients)
        ]

    def _run(self, url: str, limit_s: float) -> None:
        until = time.monotonic() + limit_s
        with httpx.Client(timeout=5.0) as client:
            while not self._stop.is_set() and time.monotonic() < until:
                client.get(f"{url}/api/aggregate", params={"timeout_ms": 1000})

    def __enter__(self) -> _Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)


def test_a_fault_from_the_form_shows_on_its_tile_and_clearing_restores_it(
    start: StartStack, panel_on: OpenPanel, request: pytest.FixtureRequest
) -> None:
    stack = start("--latency", "fixed:2", shards=SHARDS)
    panel = panel_on(stack)
    expect(panel.page.locator(".tile[data-shard]")).to_have_count(SHARDS)
    expect(panel.page.locator("#link")).to_have_attribute("data-live", "true")
    panel.use_token(_token(stack))
    with _Load(stack.gateway_url):
        panel.inject("3", "latency", latency="fixed:300")
        clicked = time.monotonic()
        expect(panel.tile(3)).to_have_attribute(
            "data-state", "faulted", timeout=SHOWN_WITHIN_S * 1000
        )
        assert time.monotonic() - clicked <= SHOWN_WITHIN_S
        expect(panel.tile(3)).to_have_attribute("data-faults", "latency")
        expect(panel.tile(4)).to_have_attribute("data-state", "ok")
        assert "injected latency-" in panel.message()
        assert "latency" in _faults_listed(stack)
        # Latency shows: the slow shard's median on its tile falls in the 250-500 ms
        # bucket its 300 ms calls land in (interpolated, as histogram_quantile does).
        slow = re.compile(r"p50 (2[5-9]\d|[34]\d\d) ")
        expect(panel.tile(3)).to_contain_text(slow, timeout=10_000)
        expect(panel.tile(4)).not_to_contain_text(slow)
        # `make screenshot`: the README's and the manual's picture of the panel under load.
        screenshot = request.config.getoption("--panel-screenshot")
        if screenshot:
            time.sleep(20)  # a few points on the charts
            panel.page.screenshot(path=screenshot, full_page=True)

    panel.page.click("#clear-all")
    expect(panel.tile(3)).to_have_attribute("data-state", "ok", timeout=SHOWN_WITHIN_S * 1000)
    assert "cleared 1 fault" in panel.message()
    assert "latency" not in _faults_listed(stack)


def test_a_wrong_token_changes_nothing_and_says_why(
    shared: RunningStack, panel_on: OpenPanel
) -> None:
    stack = shared
    panel = panel_on(stack)
    expect(panel.page.locator(".tile[data-shard]")).to_have_count(4)
    panel.use_token("not-the-token-of-this-stack")
    # The snapshot refuses it too: the page says so and goes on without it.
    expect(panel.page.locator("#token-form")).to_have_attribute("data-refused", "true")
    expect(panel.page.locator("#link")).to_have_attribute("data-live", "true")
    panel.inject("1", "latency", latency="fixed:300")
    expect(panel.page.locator("#message")).to_have_attribute("data-kind", "error")
    assert panel.message().startswith("HTTP 401: ")
    listing = httpx.get(f"{stack.gateway_url}/admin/faults", headers=stack.admin_headers())
    assert listing.json()["active"] == 0
    # The token was kept in the tab's session storage, never in a cookie or the URL.
    stored = panel.page.evaluate("sessionStorage.getItem('shardstack.adminToken')")
    assert stored == "not-the-token-of-this-stack"
    assert panel.page.context.cookies() == []
    assert "not-the-token" not in panel.page.url


def test_a_bad_field_is_named_next_to_it_and_nothing_is_injected(
    shared: RunningStack, panel_on: OpenPanel
) -> None:
    stack = shared
    panel = panel_on(stack)
    expect(panel.page.locator(".tile[data-shard]")).to_have_count(4)
    panel.use_token(_token(stack))
    panel.inject("1", "latency", latency="sometimes")
    error = panel.page.locator('[data-error-for="latency"]')
    expect(error).not_to_have_text("")
    expect(panel.page.locator("#f-latency")).to_have_attribute("aria-invalid", "true")
    panel.inject("9", "latency", latency="fixed:5")
    expect(panel.page.locator('[data-error-for="shards"]')).to_contain_text("9")
    listing = httpx.get(f"{stack.gateway_url}/admin/faults", headers=stack.admin_headers())
    assert listing.json()["active"] == 0


def test_a_killed_shard_shows_down_within_three_seconds(
    start: StartStack, panel_on: OpenPanel
) -> None:
    stack = start("--latency", "fixed:1", shards=4)
    panel = panel_on(stack)
    expect(panel.tile(2)).to_have_attribute("data-up", "true")
    os.kill(get(f"{stack.shard_url(2)}/healthz").json()["pid"], signal.SIGKILL)
    killed = time.monotonic()
    expect(panel.tile(2)).to_have_attribute("data-state", "down", timeout=SHOWN_WITHIN_S * 1000)
    assert time.monotonic() - killed <= SHOWN_WITHIN_S
    expect(panel.tile(1)).to_have_attribute("data-up", "true")


def test_the_panel_reconnects_when_the_gateway_restarts(
    start: StartStack, panel_on: OpenPanel
) -> None:
    first = start("--latency", "fixed:1", shards=4)
    panel = panel_on(first)
    link = panel.page.locator("#link")
    expect(link).to_have_attribute("data-live", "true")
    port = first.gateway_url.rsplit(":", 1)[1]
    first.stop(signal.SIGTERM)
    expect(link).to_have_attribute("data-live", "false", timeout=10_000)
    # The same stack again, on the same ports.
    again = start(
        "--latency", "fixed:1", "--port", port, "--shard-base-port", str(first.shard_base_port),
        shards=4, wait=False,
    )  # fmt: skip
    wait_until_up(again)
    # `again` drew ports of its own, then was told to use the first stack's.
    wait_until(lambda: get(f"{first.gateway_url}/readyz").status_code == 200, 30, "ready")
    expect(link).to_have_attribute("data-live", "true", timeout=10_000)
    expect(panel.page.locator(".tile[data-shard]")).to_have_count(4)


SCENARIO = """name: Panel Test
steps:
  - {at: 0s, shards: [1], inject: {kind: latency, latency: "fixed:200"}, for: 60s}
  - {at: 1s, shards: [2], inject: {kind: error, status: 503}, for: 60s}
"""


def test_a_scenario_plays_its_timeline_and_stop_removes_its_faults(
    shared: RunningStack, panel_on: OpenPanel, tmp_path: Path
) -> None:
    stack = shared
    panel = panel_on(stack)
    page = panel.page
    expect(page.locator(".tile[data-shard]")).to_have_count(4)
    panel.use_token(_token(stack))
    scenario_file = tmp_path / "panel.yaml"
    scenario_file.write_text(SCENARIO)
    page.set_input_files("#scenario-file", str(scenario_file))
    expect(page.locator("#scenario-status")).to_have_attribute("data-state", "planned")
    expect(page.locator("#timeline li")).to_have_count(2)
    page.click("#scenario-play")
    first, second = (
        page.locator('#timeline li[data-step="1"]'),
        page.locator('#timeline li[data-step="2"]'),
    )
    expect(first).to_have_attribute("data-status", "injected", timeout=SHOWN_WITHIN_S * 1000)
    expect(second).to_have_attribute("data-status", "injected", timeout=(1 + SHOWN_WITHIN_S) * 1000)
    expect(panel.tile(1)).to_have_attribute("data-faults", "latency", timeout=SHOWN_WITHIN_S * 1000)
    expect(panel.tile(2)).to_have_attribute("data-faults", "error", timeout=SHOWN_WITHIN_S * 1000)
    listed = _faults_listed(stack)
    assert "panel-test-1" in listed
    assert "panel-test-2" in listed
    page.click("#scenario-stop")
    expect(page.locator("#scenario-status")).to_have_attribute("data-state", "stopped")
    expect(first).to_have_attribute("data-status", "removed")
    expect(panel.tile(1)).to_have_attribute("data-state", "ok", timeout=SHOWN_WITHIN_S * 1000)
    assert "panel-test" not in _faults_listed(stack)


def test_the_page_is_served_with_a_strict_content_security_policy(shared: RunningStack) -> None:
    stack = shared
    page = get(f"{stack.gateway_url}/ui")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert get(f"{stack.gateway_url}/ui/assets/panel.js").status_code == 200
    state = get(f"{stack.gateway_url}/ui/state").json()
    assert [shard["id"] for shard in state["shards"]] == [0, 1, 2, 3]
    assert state["gateway"]["semaphore_capacity"] > 0


def test_faults_show_on_the_tiles_only_once_the_token_is_given(
    shared: RunningStack, panel_on: OpenPanel
) -> None:
    stack = shared
    added = stack.cli("fault", "inject", "1", "error", "status=503", "--for", "5m")
    assert added.returncode == 0, added.stderr
    panel = panel_on(stack)
    expect(panel.tile(1)).to_contain_text("enter the admin token to see them")
    expect(panel.tile(1)).to_have_attribute("data-faults", "")
    expect(panel.tile(1).locator(".chip")).to_have_count(0)
    panel.use_token(_token(stack))
    expect(panel.tile(1)).to_have_attribute("data-faults", "error", timeout=SHOWN_WITHIN_S * 1000)
    expect(panel.tile(1).locator(".chip")).to_have_count(1)
    expect(panel.tile(1)).not_to_contain_text("enter the admin token")


def test_the_api_document_renders_from_this_origin_under_the_panel_s_policy(
    shared: RunningStack, browser: Browser
) -> None:
    stack = shared
    page = browser.new_page()
    errors: list[str] = []
    elsewhere: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on(
        "request",
        lambda r: None if r.url.startswith(stack.gateway_url) else elsewhere.append(r.url),
    )
    response = page.goto(f"{stack.gateway_url}/docs")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe" not in policy
    expect(page.locator(".opblock-summary-path", has_text="/api/aggregate")).to_be_visible(
        timeout=15_000
    )
    expect(page.locator(".opblock-summary-path", has_text="/admin/faults").first).to_be_visible()
    assert errors == [], errors  # a script or style the policy refused would be one
    assert elsewhere == [], elsewhere
    assert get(f"{stack.gateway_url}/redoc").status_code == 404
    page.context.close()
