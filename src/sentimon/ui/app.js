// sentimon's page: analyze a text, say whether the answer was right.
// Text from the API only ever goes into textContent or a form value, never into HTML.

const $ = (id) => document.getElementById(id);
const API = new URL("..", document.baseURI); // the API serves this page at /ui/
const SOURCE = "sentimon-ui";

let info = null; // GET /info, once
let current = null; // the prediction the feedback buttons refer to

/** A readable sentence for an API error body ({"error", "error_type"}) and status. */
function explain(status, body, headers) {
  const message = body && typeof body.error === "string" ? body.error : `HTTP ${status}`;
  const retry = headers.get("Retry-After");
  const later = retry ? ` Try again in ${retry} s.` : "";
  switch (status) {
    case 422:
      return `The text was not accepted: ${message}.`;
    case 413:
      return `Too large: ${message}.`;
    case 429:
      return `The service is busy: ${message}.${later}`;
    case 503:
      return `The model is not ready: ${message}.${later}`;
    default:
      return `${message} (HTTP ${status}).`;
  }
}

async function call(path, options = {}) {
  let response;
  try {
    response = await fetch(new URL(path, API), {
      ...options,
      headers: { "content-type": "application/json", ...(options.headers || {}) },
    });
  } catch (error) {
    return { ok: false, status: 0, message: "The service cannot be reached." };
  }
  let body = null;
  try {
    body = await response.json();
  } catch (error) {
    body = null;
  }
  if (!response.ok) {
    return { ok: false, status: response.status, body, message: explain(response.status, body, response.headers) };
  }
  return { ok: true, status: response.status, body };
}

function showError(element, message) {
  element.textContent = message;
  element.hidden = !message;
}

async function loadInfo() {
  const got = await call("info", { method: "GET" });
  if (!got.ok) {
    $("model").textContent = got.message;
    return;
  }
  info = got.body;
  $("model").textContent = `${info.model} (${info.model_revision}) · ${info.backend}`;
  $("limit").textContent = ` of ${info.limits.max_text_chars}`;
  const select = $("right-label");
  select.replaceChildren(...info.labels.map((label) => new Option(label, label)));
}

function percent(p) {
  return `${(100 * p).toFixed(1)}%`;
}

function showResult(body, elapsedMs) {
  current = body;
  $("result-label").textContent = body.label;
  $("result-score").textContent = percent(body.score);
  const labels = info ? info.labels : Object.keys(body.probabilities);
  $("bars").replaceChildren(
    ...labels.map((label) => {
      const p = body.probabilities[label] ?? 0;
      const item = document.createElement("li");
      item.className = label === body.label ? "top" : "";
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = label;
      const track = document.createElement("span");
      track.className = "track";
      track.setAttribute("role", "meter");
      track.setAttribute("aria-label", label);
      track.setAttribute("aria-valuemin", "0");
      track.setAttribute("aria-valuemax", "100");
      track.setAttribute("aria-valuenow", (100 * p).toFixed(1));
      const fill = document.createElement("span");
      fill.className = "fill";
      fill.style.width = percent(p);
      track.append(fill);
      const value = document.createElement("span");
      value.className = "value";
      value.textContent = percent(p);
      item.append(name, track, value);
      return item;
    }),
  );
  $("result-latency").textContent = `${elapsedMs.toFixed(0)} ms`;
  $("result-model").textContent = `${body.model} (${body.model_revision})`;
  $("result-id").textContent = body.request_id;
  $("correction").hidden = true;
  $("wrong").setAttribute("aria-expanded", "false");
  $("feedback-status").textContent = "";
  for (const id of ["right", "wrong", "send-label"]) $(id).disabled = false;
  $("result").hidden = false;
}

async function analyze(event) {
  event.preventDefault();
  const text = $("text").value;
  const error = $("analyze-error");
  if (!text.trim()) {
    showError(error, "Type a text to analyze first.");
    $("text").focus();
    return;
  }
  showError(error, "");
  $("result").hidden = true; // never show the last answer as if it were this one's
  current = null;
  const button = $("analyze-button");
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  const started = performance.now();
  const got = await call("predict", { method: "POST", body: JSON.stringify({ text }) });
  const elapsed = performance.now() - started;
  button.disabled = false;
  button.removeAttribute("aria-busy");
  if (!got.ok) {
    showError(error, got.message);
    return;
  }
  showResult(got.body, elapsed);
}

async function sendFeedback(payload) {
  if (!current) return;
  const status = $("feedback-status");
  status.textContent = "Sending…";
  const got = await call("feedback", {
    method: "POST",
    body: JSON.stringify({ request_id: current.request_id, source: SOURCE, ...payload }),
  });
  if (!got.ok) {
    status.textContent = got.status === 409 ? `Not recorded: ${got.body?.error ?? "conflict"}.` : got.message;
    return;
  }
  const fb = got.body;
  const what = fb.correct ? `right (${fb.predicted})` : `wrong; right label ${fb.label ?? "not given"}`;
  status.textContent = fb.duplicate ? `Already recorded: ${what}.` : `Recorded: ${what}.`;
  for (const id of ["right", "wrong", "send-label"]) $(id).disabled = true;
}

function wrong() {
  const open = $("correction").hidden;
  $("correction").hidden = !open;
  $("wrong").setAttribute("aria-expanded", String(open));
  if (open) {
    const select = $("right-label");
    const other = [...select.options].find((o) => o.value !== current?.label);
    if (other) select.value = other.value;
    select.focus();
  }
}

function start() {
  $("analyze").addEventListener("submit", analyze);
  $("text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      $("analyze").requestSubmit();
    }
  });
  $("text").addEventListener("input", () => {
    $("count").textContent = String($("text").value.length);
  });
  $("right").addEventListener("click", () => sendFeedback({ correct: true }));
  $("wrong").addEventListener("click", wrong);
  $("feedback").addEventListener("submit", (event) => {
    event.preventDefault();
    sendFeedback({ label: $("right-label").value });
  });
  loadInfo();
}

start();
