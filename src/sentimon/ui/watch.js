// The Watch view: this replica's numbers from GET /live, refreshed while the view is open.

import { $, call, el, showError } from "./api.js";
import { legend, lineChart } from "./chart.js";

const WINDOW_S = 15 * 60;
const SETTINGS = { prometheus: "PROMETHEUS_URL", alertmanager: "ALERTMANAGER_URL", grafana: "GRAFANA_URL" };
const NAMES = { prometheus: "Prometheus", alertmanager: "Alertmanager", grafana: "Grafana" };
const STATISTICS = { label_mix: "Label mix", confidence: "Confidence" };

let info = null;
let active = false;
let timer = null;
let last = null;

const fixed = (v, digits) => (v == null ? null : v.toFixed(digits));
const share = (v) => (v == null ? null : `${(100 * v).toFixed(1)}%`);
const number = (n) => n.toLocaleString("en-US");

export function useInfo(answer) {
  info = answer;
}

/** Start or stop refreshing (the view is shown or hidden). */
export function setActive(on) {
  active = on;
  clearTimeout(timer);
  if (on) refresh();
}

async function refresh() {
  clearTimeout(timer);
  if (!active || document.hidden) return;
  const got = await call("live", { method: "GET" });
  if (!active) return;
  showError($("watch-error"), got.ok ? "" : got.message);
  if (got.ok) {
    last = got.body;
    show(last);
  }
  const every = got.ok ? got.body.interval_s : 5;
  timer = setTimeout(refresh, Math.max(1, every) * 1000);
}

function tile(id, value, missing) {
  const dd = $(id);
  dd.textContent = value ?? missing;
  dd.classList.toggle("missing", value == null);
  dd.classList.toggle("long", value != null && value.length > 12);
}

function show(body) {
  const started = new Date(body.started_at * 1000).toLocaleTimeString("en-GB");
  const updated = new Date(body.now * 1000).toLocaleTimeString("en-GB");
  $("watch-scope").textContent =
    `This replica only, sampled every ${body.interval_s} s since it started at ${started}; updated ${updated}. ` +
    "The whole fleet, and the alerts, are in Prometheus.";
  const m = body.last_minute;
  const none = m ? "no traffic" : "not available yet";
  tile("now-rps", m ? fixed(m.requests_per_s, 2) : null, none);
  tile("now-errors", m ? share(m.error_ratio) : null, m ? "no requests" : none);
  tile("now-rejected", m ? share(m.rejected_ratio) : null, m ? "no requests" : none);
  tile("now-p50", m && m.p50_ms != null ? `${fixed(m.p50_ms, 1)} ms` : null, m ? "no predictions" : none);
  tile("now-p95", m && m.p95_ms != null ? `${fixed(m.p95_ms, 1)} ms` : null, m ? "no predictions" : none);
  tile("now-confidence", m ? fixed(m.mean_confidence, 3) : null, m ? "no predictions" : none);
  const fb = body.feedback;
  tile(
    "now-feedback",
    fb.available && fb.n ? `${share(fb.agreement)} of ${number(fb.n)}` : null,
    fb.available ? "no feedback yet" : `not available: ${fb.reason}`,
  );
  tile("now-drift", driftStatus(body.drift), body.drift.available ? "no predictions" : `not available: ${body.drift.reason}`);
  charts(body);
  driftTable(body.drift);
  totals(body);
  model(body);
  links(body.links);
}

function driftStatus(drift) {
  if (!drift.available || !drift.tests.length) return null;
  const drifting = drift.tests.filter((t) => t.status === "drifting");
  if (drifting.length) return `drifting: ${drifting.map((t) => STATISTICS[t.statistic] ?? t.statistic).join(", ").toLowerCase()}`;
  const n = Math.max(...drift.tests.map((t) => t.n));
  return n < drift.min_n ? `too few predictions (${number(n)} of ${number(drift.min_n)})` : "no drift";
}

function charts(body) {
  const end = body.now;
  // The last 15 minutes, or since the first sample when the replica is younger.
  const first = body.series.length ? body.series[0].start : end - body.interval_s;
  const start = Math.max(end - WINDOW_S, Math.min(first, end - 10));
  const at = (f) => body.series.map((p) => [p.end, f(p)]);
  const draw = (id, lines, options) => {
    lineChart($(`chart-${id}`), { lines, start, end, ...options });
    legend($(`legend-${id}`), lines);
    const latest = lines.map((l) => {
      const value = l.points.length ? l.points[l.points.length - 1][1] : null;
      return `${l.name} ${value == null ? "none" : options.format(value)}`;
    });
    const span = end - start < 120 ? `${Math.round(end - start)} seconds` : `${Math.round((end - start) / 60)} minutes`;
    $(`chart-${id}`).setAttribute("aria-label", `${$(`title-${id}`).textContent}, last ${span}; latest: ${latest.join(", ")}`);
  };
  draw(
    "traffic",
    [
      { name: "requests/s", className: "s0", points: at((p) => p.requests_per_s) },
      { name: "texts/s", className: "s1", points: at((p) => p.predictions_per_s) },
    ],
    { format: (v) => fixed(v, v < 10 ? 1 : 0) },
  );
  draw(
    "errors",
    [
      { name: "5xx", className: "bad", points: at((p) => p.error_ratio) },
      { name: "4xx", className: "s1", points: at((p) => p.rejected_ratio) },
    ],
    { format: (v) => `${(100 * v).toFixed(0)}%` },
  );
  draw(
    "latency",
    [
      { name: "p50", className: "s0", points: at((p) => p.p50_ms) },
      { name: "p95", className: "s1", points: at((p) => p.p95_ms) },
    ],
    { format: (v) => `${fixed(v, v < 10 ? 1 : 0)} ms` },
  );
  const reference = body.reference_label_shares;
  draw(
    "labels",
    body.labels.flatMap((label, i) => {
      const lines = [{ name: label, className: `l${i % 6}`, points: at((p) => p.label_shares?.[label] ?? null) }];
      if (reference) {
        lines.push({ name: `${label} (reference)`, className: `l${i % 6}`, dashed: true, points: [[start, reference[label]], [end, reference[label]]] });
      }
      return lines;
    }),
    { yMax: 1, format: (v) => `${(100 * v).toFixed(0)}%` },
  );
  draw("confidence", [{ name: "mean confidence", className: "s0", points: at((p) => p.mean_confidence) }], {
    yMax: 1,
    format: (v) => v.toFixed(2),
  });
}

function driftTable(drift) {
  $("drift-off").hidden = drift.available;
  $("drift-off").textContent = drift.available ? "" : `Not available: ${drift.reason}.`;
  $("drift-table").hidden = !drift.available;
  if (!drift.available) return;
  $("drift-window").textContent = `${Math.round(drift.window_s)} s`;
  $("drift-rows").replaceChildren(
    ...drift.tests.map((t) => {
      const tr = document.createElement("tr");
      const name = el("th", "", STATISTICS[t.statistic] ?? t.statistic);
      name.scope = "row";
      const status = t.status === "too few" ? `too few (needs ${number(drift.min_n)})` : t.status;
      tr.append(
        name,
        el("td", "num", number(t.n)),
        el("td", "num", t.chi2 == null ? "–" : t.chi2.toFixed(1)),
        el("td", "num", t.critical_value.toFixed(1)),
        el("td", t.status === "drifting" ? "bad" : "", status),
      );
      return tr;
    }),
  );
}

function row(name, value) {
  const tr = document.createElement("tr");
  const th = el("th", "", name);
  th.scope = "row";
  tr.append(th, el("td", "num", value));
  return tr;
}

function totals(body) {
  const t = body.totals;
  $("totals").replaceChildren(
    row("Requests", number(t.requests)),
    row("Answered with 5xx", number(t.errors)),
    row("Answered with 4xx", number(t.rejected)),
    ...body.labels.map((label) => row(`Predicted ${label}`, number(t.predictions[label] ?? 0))),
    row("Feedback", body.feedback.available ? `${number(body.feedback.n)} (${number(body.feedback.right)} right)` : "not available"),
  );
}

function model(body) {
  const facts = [
    ["Model", body.model],
    ["Revision", body.model_revision],
    ["Backend", info?.int8 ? `${body.backend} (${info.int8.recipe}, ${info.int8.kernel})` : body.backend],
    ["Labels", body.labels.join(", ")],
    ["Reference", info?.drift.available ? info.drift.reference : `not available: ${info?.drift.reason ?? "unknown"}`],
  ];
  $("model-facts").replaceChildren(
    ...facts.map(([name, value]) => {
      const div = document.createElement("div");
      div.append(el("dt", "", name), el("dd", "", value));
      return div;
    }),
  );
}

function links(set) {
  $("links").replaceChildren(
    ...Object.keys(NAMES).map((key) => {
      const li = document.createElement("li");
      if (set[key]) {
        const a = el("a", "", NAMES[key]);
        a.href = set[key];
        a.rel = "noopener noreferrer";
        a.target = "_blank";
        li.append(a);
      } else {
        li.append(el("span", "missing", `${NAMES[key]}: not set (SENTIMON_${SETTINGS[key]})`));
      }
      return li;
    }),
  );
}

export function startWatch() {
  document.addEventListener("visibilitychange", () => {
    if (active && !document.hidden) refresh();
  });
  window.addEventListener("resize", () => {
    if (active && last) charts(last);
  });
}
