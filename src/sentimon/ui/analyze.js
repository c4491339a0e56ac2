// The Analyze view: one text, its label and probabilities, and whether it was right.

import { $, SOURCE, call, describeFeedback, el, percent, showError } from "./api.js";

let labels = null; // the model's labels, from /info
let current = null; // the prediction the feedback buttons refer to

function bar(label, p, top) {
  const item = el("li", top ? "top" : "");
  const track = el("span", "track");
  track.setAttribute("role", "meter");
  track.setAttribute("aria-label", label);
  track.setAttribute("aria-valuemin", "0");
  track.setAttribute("aria-valuemax", "100");
  track.setAttribute("aria-valuenow", (100 * p).toFixed(1));
  const fill = el("span", "fill");
  fill.style.width = percent(p);
  track.append(fill);
  item.append(el("span", "name", label), track, el("span", "value", percent(p)));
  return item;
}

function showResult(body, elapsedMs) {
  current = body;
  $("result-label").textContent = body.label;
  $("result-score").textContent = percent(body.score);
  const names = labels ?? Object.keys(body.probabilities);
  $("bars").replaceChildren(...names.map((l) => bar(l, body.probabilities[l] ?? 0, l === body.label)));
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
  const what = describeFeedback(got.body);
  status.textContent = got.body.duplicate ? `Already recorded: ${what}.` : `Recorded: ${what}.`;
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

/** Called once /info has answered. */
export function useInfo(info) {
  labels = info.labels;
  $("limit").textContent = ` of ${info.limits.max_text_chars}`;
  $("right-label").replaceChildren(...info.labels.map((label) => new Option(label, label)));
}

export function startAnalyze() {
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
}
