// The shardstack panel: polls /ui/state once a second, draws the gateway and the shards,
// and sends faults to the admin API with the token kept in this tab's session storage.
"use strict";

const POLL_MS = 1000;
const WINDOW_S = 5; // rates and quantiles over the last 5 s, as rate(...[5s])
const HISTORY_S = 300;
const TOKEN_KEY = "shardstack.adminToken";
// Kind-independent fields go after the kind's own, in this order.
const COMMON_FIELDS = ["probability", "duration_s", "period_s", "on_s", "k_of_n", "correlation", "id"];
const FAILURES = ["timeout", "error", "reset", "unreachable"];

const history = [];
const tiles = new Map();
const selected = new Set();
let faultKinds = {};
let charts = null;
// A token /ui/state refused: polls go without it until another is entered.
let refusedToken = null;

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

// --- reading snapshots ------------------------------------------------------------------

// The shards' faults come only with the admin token (as from GET /admin/faults).
function stateRequest() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = token && token !== refusedToken ? { authorization: `Bearer ${token}` } : {};
  return fetch("/ui/state", { cache: "no-store", headers });
}

async function poll() {
  try {
    let response = await stateRequest();
    if (response.status === 401) {
      refusedToken = sessionStorage.getItem(TOKEN_KEY);
      showToken();
      response = await stateRequest();
    }
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const snapshot = await response.json();
    record(snapshot);
    render(snapshot);
    setLive(true);
  } catch (error) {
    setLive(false, error);
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

function setLive(live, error) {
  const link = $("link");
  link.dataset.live = String(live);
  link.textContent = live ? "live" : `gateway not answering (${error.message}); retrying`;
}

function total(snapshot) {
  const latency = snapshot.gateway.latency;
  return latency.length ? latency[latency.length - 1] : 0;
}

function record(snapshot) {
  const last = history[history.length - 1];
  // Totals that go down mean a restarted gateway: its counters started again.
  if (last && total(snapshot) < total(last)) history.length = 0;
  history.push(snapshot);
  while (history.length && history[0].time < snapshot.time - HISTORY_S) history.shift();
}

// The snapshot WINDOW_S before `snapshot` (or the oldest there is).
function before(snapshot, seconds = WINDOW_S) {
  let found = history[0];
  for (const earlier of history) {
    if (earlier.time <= snapshot.time - seconds) found = earlier;
    else break;
  }
  return found === snapshot ? null : found;
}

function rate(now, then, seconds) {
  return then == null || seconds <= 0 ? null : Math.max(0, (now - (then || 0)) / seconds);
}

// As PromQL's histogram_quantile: linear within the bucket the rank falls in.
function quantile(q, bounds, now, then) {
  if (!then) return null;
  const counts = now.map((count, i) => count - (then[i] || 0));
  const all = counts[counts.length - 1];
  if (!(all > 0)) return null;
  const rank = q * all;
  for (let i = 0; i < counts.length; i++) {
    if (counts[i] >= rank) {
      if (i >= bounds.length) return bounds[bounds.length - 1];
      const lower = i === 0 ? 0 : bounds[i - 1];
      const below = i === 0 ? 0 : counts[i - 1];
      const inside = counts[i] - below;
      return lower + (bounds[i] - lower) * (inside > 0 ? (rank - below) / inside : 0);
    }
  }
  return bounds[bounds.length - 1];
}

function ms(seconds) {
  if (seconds == null) return "–";
  const value = seconds * 1000;
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

function perSecond(values) {
  const shown = Object.entries(values).filter(([, value]) => value != null && value >= 0.05);
  return shown.length ? shown.map(([name, value]) => `${name} ${value.toFixed(1)}`).join(" · ") : "0";
}

// --- drawing ---------------------------------------------------------------------------

function render(snapshot) {
  const then = before(snapshot);
  const seconds = then ? snapshot.time - then.time : 0;
  renderGateway(snapshot, then, seconds);
  renderShards(snapshot, then, seconds);
  renderCharts(snapshot, then);
}

function renderGateway(snapshot, then, seconds) {
  const figures = snapshot.gateway;
  for (const node of document.querySelectorAll("[data-figure]")) {
    const value = figures[node.dataset.figure];
    node.textContent = value == null ? "–" : Math.round(value).toString();
  }
  const capacity = figures.semaphore_capacity || 1;
  $("semaphore-fill").style.width = `${Math.min(100, (100 * figures.semaphore_in_use) / capacity)}%`;
  $("semaphore-fill").dataset.waiting = String(figures.semaphore_waiting > 0);
  const poolMax = figures.pool_max || 1;
  $("pool-fill").style.width = `${Math.min(100, (100 * figures.pool_active) / poolMax)}%`;
  $("pool-fill").dataset.waiting = String(figures.pool_pending > 0);
  const past = then ? then.gateway : null;
  const rates = (key) =>
    Object.fromEntries(
      Object.entries(figures[key]).map(([name, value]) => [
        name,
        past ? rate(value, past[key][name], seconds) : null,
      ]),
    );
  $("aggregate-rates").textContent = perSecond(rates("aggregates"));
  $("shed-rates").textContent = perSecond(rates("shed"));
  const single = (key) => (past ? rate(figures[key], past[key], seconds) : null);
  $("retry-rates").textContent = perSecond({
    retries: single("retries"),
    "retries denied": single("retries_denied"),
    hedges: single("hedges"),
    "hedges won": single("hedges_won"),
  });
}

function tileFor(shard) {
  let tile = tiles.get(shard.id);
  if (tile) return tile;
  tile = el("div", { class: "tile", "data-shard": String(shard.id), "data-state": "ok" });
  tile.addEventListener("click", (event) => {
    if (event.target.closest("button")) return;
    if (selected.has(shard.id)) selected.delete(shard.id);
    else selected.add(shard.id);
    tile.dataset.selected = String(selected.has(shard.id));
    $("f-shards").value = selected.size ? [...selected].sort((a, b) => a - b).join(",") : "all";
  });
  tiles.set(shard.id, tile);
  $("grid").append(tile);
  return tile;
}

function renderShards(snapshot, then, seconds) {
  const past = then ? new Map(then.shards.map((shard) => [shard.id, shard])) : new Map();
  for (const shard of snapshot.shards) {
    const tile = tileFor(shard);
    const earlier = past.get(shard.id);
    const calls = (view, names) => names.reduce((sum, name) => sum + ((view && view.calls[name]) || 0), 0);
    const failed = calls(shard, FAILURES) - calls(earlier, FAILURES);
    const answered = failed + calls(shard, ["ok"]) - calls(earlier, ["ok"]);
    const errorRatio = earlier && answered > 0 ? failed / answered : null;
    const p50 = quantile(0.5, snapshot.buckets, shard.latency, earlier && earlier.latency);
    const p99 = quantile(0.99, snapshot.buckets, shard.latency, earlier && earlier.latency);
    const faults = shard.faults || [];
    let state = "ok";
    if (!shard.up) state = "down";
    else if (shard.breaker === "open") state = "open";
    else if (faults.length) state = "faulted";
    else if (errorRatio != null && errorRatio > 0.1) state = "erroring";
    tile.dataset.state = state;
    tile.dataset.faults = faults.map((fault) => fault.kind).join(" ");
    tile.dataset.up = String(shard.up);
    tile.dataset.breaker = shard.breaker;
    const lines = [
      el("div", { class: "head" },
        el("span", { text: `#${shard.id}${shard.zone ? ` · ${shard.zone}` : ""}` }),
        el("span", { class: "state", text: state === "ok" ? "" : state })),
      el("div", { class: "numbers", text: `p50 ${ms(p50)} · p99 ${ms(p99)} ms` }),
      el("div", { class: "numbers", text:
        `errors ${errorRatio == null ? "–" : (100 * errorRatio).toFixed(1) + " %"} · breaker ${shard.breaker}` }),
    ];
    if (shard.waiting != null) {
      lines.push(el("div", { class: "numbers", text: `queue ${shard.waiting} · serving ${shard.in_service}` }));
    }
    if (!snapshot.faults_shown) {
      lines.push(el("div", { class: "numbers", text: "faults: enter the admin token to see them" }));
    } else if (shard.faults == null) {
      lines.push(el("div", { class: "numbers", text: "faults unknown" }));
    }
    const chips = el("div");
    for (const fault of faults) {
      const remove = el("button", { type: "button", title: `remove ${fault.id} from every shard`, text: "×" });
      remove.addEventListener("click", () => removeFault(fault.id));
      chips.append(el("span", { class: "chip", "data-fault-id": fault.id, text: `${fault.kind} ` }, remove));
    }
    lines.push(chips);
    tile.replaceChildren(...lines);
  }
}

function renderCharts(snapshot, then) {
  if (typeof uPlot === "undefined") return;
  if (!charts) charts = makeCharts();
  const times = [], p50 = [], p99 = [], p999 = [], inUse = [], waiting = [], capacity = [];
  for (const point of history) {
    const earlier = before(point);
    const q = (level) => {
      const value = quantile(level, point.buckets, point.gateway.latency, earlier && earlier.gateway.latency);
      return value == null ? null : value * 1000;
    };
    times.push(point.time);
    p50.push(q(0.5));
    p99.push(q(0.99));
    p999.push(q(0.999));
    inUse.push(point.gateway.semaphore_in_use);
    waiting.push(point.gateway.semaphore_waiting);
    capacity.push(point.gateway.semaphore_capacity);
  }
  charts.latency.setData([times, p50, p99, p999]);
  charts.semaphore.setData([times, inUse, waiting, capacity]);
}

function makeCharts() {
  const width = (id) => Math.max(300, $(id).clientWidth || 600);
  const line = (label, stroke, dash) => ({ label, stroke, width: 2, dash, spanGaps: false });
  const axes = [{ stroke: "#8a97a4", grid: { stroke: "#2a3540" } }, { stroke: "#8a97a4", grid: { stroke: "#2a3540" } }];
  const latency = new uPlot(
    { width: width("latency-chart"), height: 220, axes,
      series: [{}, line("p50", "#58a6ff"), line("p99", "#d29922"), line("p99.9", "#f85149")] },
    [[], [], [], []], $("latency-chart"));
  const semaphore = new uPlot(
    { width: width("semaphore-chart"), height: 220, axes,
      series: [{}, line("in use", "#58a6ff"), line("waiting", "#d29922"), line("capacity", "#8a97a4", [4, 4])] },
    [[], [], [], []], $("semaphore-chart"));
  return { latency, semaphore };
}

// --- acting ----------------------------------------------------------------------------

function say(text, kind) {
  const message = $("message");
  message.textContent = text;
  message.dataset.kind = kind;
}

async function admin(method, path, body) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) {
    say("enter the admin token first (SHARDSTACK_ADMIN_TOKEN, or `shardstack token`)", "error");
    return null;
  }
  const headers = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  let answer = null;
  try {
    answer = await response.json();
  } catch {
    answer = null;
  }
  return { status: response.status, answer };
}

function problem(reply) {
  const detail = reply.answer && reply.answer.detail;
  return `HTTP ${reply.status}${detail ? `: ${detail}` : ""}`;
}

function clearErrors() {
  for (const node of document.querySelectorAll("[data-error-for]")) node.textContent = "";
  for (const node of document.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
}

function showFieldErrors(errors) {
  const unplaced = [];
  for (const error of errors) {
    const name = String(error.field).split(".")[0];
    const slot = document.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
    if (!slot) {
      unplaced.push(`${error.field}: ${error.reason}`);
      continue;
    }
    slot.textContent = error.reason;
    const input = document.querySelector(`#fault-form [name="${CSS.escape(name)}"]`);
    if (input) input.setAttribute("aria-invalid", "true");
  }
  return unplaced;
}

async function inject(event) {
  event.preventDefault();
  clearErrors();
  const kind = $("f-kind").value;
  const body = { kind, shards: $("f-shards").value.trim() };
  for (const input of $("kind-fields").querySelectorAll("[name]")) {
    const raw = input.value.trim();
    if (raw === "") continue;
    body[input.name] = input.dataset.type === "number" && raw !== "" && !Number.isNaN(Number(raw))
      ? Number(raw)
      : input.dataset.type === "boolean" ? raw === "true" : raw;
  }
  const reply = await admin("POST", "/admin/faults", body);
  if (!reply) return;
  if (reply.status === 201) {
    say(`injected ${reply.answer.id} on ${reply.answer.shards.length} shard(s)`, "ok");
  } else if (reply.status === 422 && reply.answer && reply.answer.errors) {
    const unplaced = showFieldErrors(reply.answer.errors);
    say(unplaced.length ? unplaced.join("; ") : "fix the marked fields", "error");
  } else {
    say(problem(reply), "error");
  }
}

async function clearAll() {
  clearErrors();
  const reply = await admin("DELETE", "/admin/faults");
  if (!reply) return;
  if (reply.status === 200) say(`cleared ${reply.answer.cleared} fault(s)`, "ok");
  else say(problem(reply), "error");
}

function deleteFault(id) {
  return admin("DELETE", `/admin/faults/${encodeURIComponent(id)}`);
}

async function removeFault(id) {
  const reply = await deleteFault(id);
  if (!reply) return;
  if (reply.status === 200) say(`removed ${id}`, "ok");
  else say(problem(reply), "error");
}

// --- the fault form, from the API's own document -----------------------------------------

function resolve(document, schema) {
  if (schema && schema.$ref) return resolve(document, document.components.schemas[schema.$ref.split("/").pop()]);
  return schema || {};
}

// The one non-null alternative of an optional field.
function plain(document, schema) {
  schema = resolve(document, schema);
  const options = schema.anyOf || schema.oneOf;
  if (options) {
    const concrete = options.map((option) => resolve(document, option)).filter((option) => option.type !== "null");
    if (concrete.length === 1) return { ...concrete[0], description: schema.description || concrete[0].description, default: schema.default };
  }
  return schema;
}

async function loadKinds() {
  const response = await fetch("/openapi.json");
  const spec = await response.json();
  const union = spec.paths["/admin/faults"].post.requestBody.content["application/json"].schema;
  const options = (union.oneOf || union.anyOf || [union]).map((option) => resolve(spec, option));
  faultKinds = {};
  for (const option of options) {
    const kind = option.properties.kind.const || (option.properties.kind.enum || [])[0] || option.properties.kind.default;
    faultKinds[kind] = { spec, schema: option };
  }
  const select = $("f-kind");
  select.replaceChildren(...Object.keys(faultKinds).map((kind) => el("option", { value: kind, text: kind })));
  select.addEventListener("change", showKind);
  showKind();
}

function showKind() {
  const { spec, schema } = faultKinds[$("f-kind").value];
  $("f-kind-hint").textContent = schema.description ? schema.description.split("\n")[0] : "";
  const required = new Set(schema.required || []);
  const names = Object.keys(schema.properties).filter((name) => !["kind", "shards", "selection"].includes(name));
  names.sort((a, b) => COMMON_FIELDS.indexOf(a) - COMMON_FIELDS.indexOf(b));
  const fields = names.map((name) => field(name, plain(spec, schema.properties[name]), required.has(name)));
  $("kind-fields").replaceChildren(...fields);
}

function field(name, schema, required) {
  const id = `f-${name}`;
  let input;
  if (schema.enum || schema.type === "boolean") {
    const values = schema.enum || ["true", "false"];
    input = el("select", { id, name },
      el("option", { value: "", text: required ? "choose" : "default" }),
      ...values.map((value) => el("option", { value: String(value), text: String(value) })));
  } else {
    input = el("input", { id, name, spellcheck: "false" });
    if (schema.default != null) input.placeholder = `default ${schema.default}`;
    else if (schema.examples) input.placeholder = String(schema.examples[0]);
  }
  input.dataset.type = schema.type === "integer" || schema.type === "number" ? "number" : schema.type || "string";
  // One line under the field (panel.css cuts it); all of it when hovered.
  const hint = schema.description || "";
  input.title = hint;
  return el("div", { class: "field" },
    el("label", { for: id, text: required ? `${name} *` : name }),
    input,
    el("span", { class: "hint", title: hint, text: hint }),
    el("span", { class: "error", "data-error-for": name }));
}

// --- scenarios: planned by the gateway, played from this tab ----------------------------

let scenario = null; // {plan, timers, started, injected: Set of fault ids}

async function planScenario() {
  stopScenario(false);
  const file = $("scenario-file").files[0];
  if (!file) return;
  const reply = await admin("POST", "/admin/scenarios/plan", { text: await file.text() });
  if (!reply) return;
  if (reply.status !== 200) {
    const errors = (reply.answer && reply.answer.errors) || [];
    scenarioStatus(errors.length ? errors.map((e) => `${e.field}: ${e.reason}`).join("; ") : problem(reply), "invalid");
    return;
  }
  const plan = reply.answer;
  scenario = { plan, timers: [], started: null, injected: new Set() };
  $("timeline").replaceChildren(...plan.steps.map((step) =>
    el("li", { "data-step": String(step.number), "data-status": "planned" },
      el("span", { class: "when", text: `${step.at_s.toFixed(2)}s` }),
      el("span", { text: step.description }))));
  scenarioStatus(`${plan.name}: ${plan.steps.length} steps over ${plan.end_s}s, seed ${plan.seed}`, "planned");
  $("scenario-play").disabled = false;
}

function scenarioStatus(text, state) {
  $("scenario-status").textContent = text;
  $("scenario-status").dataset.state = state;
}

function stepRow(step) {
  return document.querySelector(`#timeline li[data-step="${step.number}"]`);
}

function playScenario() {
  if (!scenario) return;
  const run = scenario;
  run.started = performance.now();
  $("scenario-play").disabled = true;
  $("scenario-stop").disabled = false;
  scenarioStatus(`${run.plan.name}: playing`, "playing");
  for (const step of run.plan.steps) {
    run.timers.push(setTimeout(() => injectStep(run, step), step.at_s * 1000));
  }
  run.timers.push(setTimeout(() => finishScenario(run), run.plan.end_s * 1000));
  run.timers.push(setInterval(() => {
    const elapsed = (performance.now() - run.started) / 1000;
    $("scenario-fill").style.width = `${Math.min(100, (100 * elapsed) / Math.max(run.plan.end_s, 0.001))}%`;
  }, 250));
}

async function injectStep(run, step) {
  const reply = await admin("POST", "/admin/faults", { ...step.fault, shards: step.shards });
  const row = stepRow(step);
  if (reply && (reply.status === 201 || reply.status === 409)) {
    if (run.started == null) {
      // Stopped while this step was on its way: it goes too.
      await deleteFault(step.fault.id);
      row.dataset.status = "removed";
      return;
    }
    run.injected.add(step.fault.id);
    row.dataset.status = "injected";
  } else {
    row.dataset.status = "failed";
    row.title = reply ? problem(reply) : "no token";
  }
}

async function finishScenario(run) {
  await removeScenarioFaults(run);
  clearTimers(run);
  $("scenario-fill").style.width = "100%";
  scenarioStatus(`${run.plan.name}: done; its faults removed`, "done");
  $("scenario-stop").disabled = true;
  $("scenario-play").disabled = false;
}

function clearTimers(run) {
  for (const timer of run.timers) {
    clearTimeout(timer);
    clearInterval(timer);
  }
  run.timers = [];
}

async function removeScenarioFaults(run) {
  for (const id of run.injected) {
    await deleteFault(id);
    for (const step of run.plan.steps) if (step.fault.id === id) stepRow(step).dataset.status = "removed";
  }
  run.injected.clear();
}

async function stopScenario(announce = true) {
  if (!scenario || scenario.started == null) return;
  const run = scenario;
  clearTimers(run);
  await removeScenarioFaults(run);
  if (announce) scenarioStatus(`${run.plan.name}: stopped; its faults removed`, "stopped");
  $("scenario-stop").disabled = true;
  $("scenario-play").disabled = false;
  run.started = null;
}

// --- the token ---------------------------------------------------------------------------

function showToken() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const refused = Boolean(token) && token === refusedToken;
  $("token-form").dataset.set = String(Boolean(token));
  $("token-form").dataset.refused = String(refused);
  $("token").placeholder = refused ? "token refused: enter another"
    : token ? "token set for this tab" : "SHARDSTACK_ADMIN_TOKEN";
}

function start() {
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token").value.trim();
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    $("token").value = "";
    showToken();
  });
  $("token-forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showToken();
  });
  $("fault-form").addEventListener("submit", inject);
  $("clear-all").addEventListener("click", clearAll);
  $("scenario-file").addEventListener("change", planScenario);
  $("scenario-play").addEventListener("click", playScenario);
  $("scenario-stop").addEventListener("click", () => stopScenario(true));
  showToken();
  loadKinds().catch((error) => say(`could not read the fault kinds: ${error.message}`, "error"));
  poll();
}

start();
