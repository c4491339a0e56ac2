// The Score view: many texts through /predict/batch in chunks, into a table you can sort,
// filter, correct row by row and download as CSV.

import { $, SOURCE, call, describeFeedback, el, percent, showError } from "./api.js";
import { MAX_FILE_BYTES, MAX_TEXTS, linesSource, parseSource } from "./parse.js";

const PAGE_ROWS = 50;
const IN_FLIGHT = 1; // one chunk at a time: the page never queues behind itself, so the server's
// admission bound (SENTIMON_MAX_QUEUE_WAIT_MS) never refuses it on an otherwise idle server
const RETRIES = 5;
const NOT_SCORED = "(not scored)";

let info = null;
let file = null; // {name, source} of the chosen file; null: the text box
let items = []; // {index, row, text, result, error, feedback}
const view = { sort: "index", dir: 1, filter: "", page: 0 };
let run = null; // {controller, done, total, started, note}
let pending = false;

const number = (n) => n.toLocaleString("en-US");
const codePoints = (text) => {
  let n = 0;
  for (const _ of text) n += 1;
  return n;
};

/** Called once /info has answered. */
export function useInfo(answer) {
  info = answer;
  $("filter").replaceChildren(
    new Option("all rows", ""),
    ...info.labels.map((label) => new Option(label, label)),
    new Option("not scored", NOT_SCORED),
  );
}

function texts() {
  const source = file ? file.source : linesSource($("lines").value);
  return source.texts(Number($("column").value || 0));
}

function describe() {
  if (!file) {
    $("file-info").textContent = "";
    $("column-row").hidden = true;
    $("clear-file").hidden = true;
    return;
  }
  const { source, name } = file;
  $("column-row").hidden = source.columns.length === 0;
  const where = source.columns.length ? ` in ${source.kind === "csv" ? "column" : "field"} “${source.columns[Number($("column").value)]}”` : "";
  const problems = source.problems.length ? ` ${source.problems.join("; ")}.` : "";
  $("file-info").textContent = `${name}: ${number(texts().length)} texts${where}.${problems}`;
  $("clear-file").hidden = false;
}

async function useFile(chosen) {
  showError($("score-error"), "");
  if (!chosen) return;
  if (chosen.size > MAX_FILE_BYTES) {
    showError(
      $("score-error"),
      `${chosen.name} is ${(chosen.size / 1048576).toFixed(1)} MB; the page takes files up to ${MAX_FILE_BYTES / 1048576} MB. ` +
        `Split it, or use the command line: sentimon predict --file ${chosen.name} --output results.csv`,
    );
    return;
  }
  const source = parseSource(chosen.name, await chosen.text());
  file = { name: chosen.name, source };
  $("column").replaceChildren(...source.columns.map((c, i) => new Option(c || `column ${i + 1}`, String(i))));
  $("column").value = String(source.column);
  $("column-label").textContent = source.kind === "csv" ? "Text column" : "Text field";
  describe();
}

function clearFile() {
  file = null;
  $("file").value = "";
  describe();
  $("lines").focus();
}

function chunks(list) {
  const maxItems = info.limits.max_batch_items;
  const maxBytes = info.limits.max_body_bytes - 64;
  const encoder = new TextEncoder();
  const out = [];
  let chunk = [];
  let bytes = 12;
  for (const item of list) {
    const size = encoder.encode(JSON.stringify(item.text)).length + 1;
    if (chunk.length && (chunk.length >= maxItems || bytes + size > maxBytes)) {
      out.push(chunk);
      chunk = [];
      bytes = 12;
    }
    chunk.push(item);
    bytes += size;
  }
  if (chunk.length) out.push(chunk);
  return out;
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });

async function send(chunk) {
  const { signal } = run.controller;
  for (let attempt = 0; ; attempt += 1) {
    const got = await call("predict/batch", {
      method: "POST",
      body: JSON.stringify({ texts: chunk.map((item) => item.text) }),
      signal,
    });
    if (got.ok) {
      got.body.predictions.forEach((p, k) => {
        chunk[k].result = p;
      });
      break;
    }
    if (got.aborted) return;
    if ([0, 429, 503].includes(got.status) && attempt < RETRIES) {
      const wait = got.retryAfter ?? 1;
      run.note = `${got.message.replace(/ Try again in .*$/, "")} Retrying in ${wait} s…`;
      schedule();
      await sleep(wait * 1000, signal);
      if (signal.aborted) return;
      continue;
    }
    for (const item of chunk) item.error = got.message;
    break;
  }
  run.note = "";
  run.done += chunk.length;
  schedule();
}

async function score(event) {
  event.preventDefault();
  const error = $("score-error");
  showError(error, "");
  if (!info) {
    showError(error, "The service has not said which model it serves yet; try again in a moment.");
    return;
  }
  const list = texts();
  if (!list.length) {
    showError(error, "Paste texts, one per line, or choose a file first.");
    return;
  }
  if (list.length > MAX_TEXTS) {
    showError(
      error,
      `That is ${number(list.length)} texts; the page scores up to ${number(MAX_TEXTS)} at a time. ` +
        "Split the file, or use the command line: sentimon predict --file FILE --output results.csv",
    );
    return;
  }
  const max = info.limits.max_text_chars;
  items = list.map(({ row, text }, i) => {
    const length = codePoints(text);
    const tooLong = length > max ? `Too long: ${number(length)} characters; the limit is ${number(max)}.` : null;
    return { index: i + 1, row, text, result: null, error: tooLong, feedback: null };
  });
  const queue = chunks(items.filter((item) => !item.error));
  run = { controller: new AbortController(), done: items.length - queue.flat().length, total: items.length, started: performance.now(), note: "" };
  Object.assign(view, { sort: "index", dir: 1, filter: "", page: 0 });
  $("filter").value = "";
  $("score-button").disabled = true;
  $("cancel").disabled = false;
  $("progress-box").hidden = false;
  $("results").hidden = false;
  schedule();
  const worker = async () => {
    while (queue.length && !run.controller.signal.aborted) await send(queue.shift());
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  const seconds = ((performance.now() - run.started) / 1000).toFixed(1);
  const scored = items.filter((item) => item.result).length;
  const failed = items.filter((item) => item.error).length;
  const notes = failed ? ` ${number(failed)} not scored (see the table).` : "";
  run.note = run.controller.signal.aborted
    ? `Cancelled: ${number(scored)} of ${number(items.length)} scored.`
    : `Done: ${number(scored)} of ${number(items.length)} scored in ${seconds} s.${notes}`;
  for (const item of items) if (!item.result && !item.error) item.error = "Cancelled before it was sent.";
  run.done = run.total;
  $("score-button").disabled = false;
  $("cancel").disabled = true;
  render();
}

function cancel() {
  if (run) run.controller.abort();
  $("cancel").disabled = true;
}

function schedule() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    render();
  });
}

function shown() {
  let list = items;
  if (view.filter === NOT_SCORED) list = list.filter((item) => !item.result);
  else if (view.filter) list = list.filter((item) => item.result?.label === view.filter);
  if (view.sort !== "index") {
    const key = {
      text: (item) => item.text.toLowerCase(),
      label: (item) => item.result?.label ?? "~",
      score: (item) => item.result?.score ?? -1,
    }[view.sort];
    list = [...list].sort((a, b) => {
      const x = key(a);
      const y = key(b);
      return (x < y ? -1 : x > y ? 1 : a.index - b.index) * view.dir;
    });
  } else if (view.dir < 0) {
    list = [...list].reverse();
  }
  return list;
}

function render() {
  if (!run) return;
  $("progress").max = run.total;
  $("progress").value = run.done;
  const scored = items.filter((item) => item.result).length;
  $("progress-text").textContent =
    run.note || `Scored ${number(scored)} of ${number(run.total)}${run.done < run.total ? "…" : "."}`;
  const list = shown();
  const pages = Math.max(1, Math.ceil(list.length / PAGE_ROWS));
  view.page = Math.min(view.page, pages - 1);
  const first = view.page * PAGE_ROWS;
  const page = list.slice(first, first + PAGE_ROWS);
  $("rows").replaceChildren(...page.map(rowFor));
  $("page-info").textContent = list.length
    ? `Rows ${number(first + 1)}–${number(first + page.length)} of ${number(list.length)}`
    : "No rows";
  $("prev").disabled = view.page === 0;
  $("next").disabled = view.page >= pages - 1;
  for (const th of document.querySelectorAll("#table th[data-sort]")) {
    const sorted = th.dataset.sort === view.sort;
    if (sorted) th.setAttribute("aria-sort", view.dir > 0 ? "ascending" : "descending");
    else th.removeAttribute("aria-sort");
  }
  $("download").disabled = scored === 0;
}

function rowFor(item) {
  const tr = document.createElement("tr");
  const label = el("td", "label", item.result ? item.result.label : "not scored");
  const confidence = item.result ? el("td", "num", percent(item.result.score)) : el("td", "error", item.error ?? "…");
  tr.append(el("td", "num", String(item.index)), el("td", "text", item.text), label, confidence, feedbackCell(item));
  return tr;
}

function button(text, name, onClick) {
  const b = el("button", "", text);
  b.type = "button";
  b.setAttribute("aria-label", name);
  b.addEventListener("click", onClick);
  return b;
}

function feedbackCell(item) {
  const td = el("td", "feedback");
  if (!item.result) return td;
  if (item.feedback) {
    td.textContent = item.feedback;
    return td;
  }
  const n = item.index;
  const right = button("Right", `Right, row ${n}`, () => sendRow(item, td, { correct: true }));
  const wrong = button("Wrong", `Wrong, row ${n}`, () => {
    const select = document.createElement("select");
    select.setAttribute("aria-label", `Right label, row ${n}`);
    select.append(...info.labels.filter((l) => l !== item.result.label).map((l) => new Option(l, l)));
    const send = button("Send", `Send, row ${n}`, () => sendRow(item, td, { label: select.value }));
    td.replaceChildren(select, send);
    select.focus();
  });
  td.append(right, wrong);
  return td;
}

async function sendRow(item, td, payload) {
  for (const b of td.querySelectorAll("button, select")) b.disabled = true;
  const got = await call("feedback", {
    method: "POST",
    body: JSON.stringify({ request_id: item.result.request_id, source: SOURCE, ...payload }),
  });
  if (got.ok) item.feedback = `${got.body.duplicate ? "Already recorded" : "Recorded"}: ${describeFeedback(got.body)}.`;
  else item.feedback = got.status === 409 ? `Not recorded: ${got.body?.error ?? "conflict"}.` : got.message;
  td.replaceChildren(document.createTextNode(item.feedback));
}

/** A CSV field, quoted when needed. Texts stay exactly as given (a spreadsheet may read one
 * starting with = + - @ as a formula: the README says so). */
function csvField(value) {
  const s = value == null ? "" : String(value);
  return /[",\r\n]/.test(s) || s !== s.trim() ? `"${s.replaceAll('"', '""')}"` : s;
}

function download() {
  const labels = info.labels;
  const header = ["row", "text", "label", "score", ...labels.map((l) => `p_${l}`), "request_id", "error", "feedback"];
  const lines = [header.map((h) => csvField(h)).join(",")];
  for (const item of items) {
    const r = item.result;
    lines.push(
      [
        item.row,
        csvField(item.text),
        r?.label ?? "",
        r ? r.score.toFixed(6) : "",
        ...labels.map((l) => (r ? (r.probabilities[l] ?? 0).toFixed(6) : "")),
        r?.request_id ?? "",
        csvField(item.error ?? ""),
        csvField(item.feedback ?? ""),
      ].join(","),
    );
  }
  const blob = new Blob([`${lines.join("\r\n")}\r\n`], { type: "text/csv;charset=utf-8" });
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = `${(file?.name ?? "texts").replace(/\.[^.]*$/, "")}-sentiment.csv`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

export function startScore() {
  $("score-form").addEventListener("submit", score);
  $("cancel").addEventListener("click", cancel);
  $("file").addEventListener("change", () => useFile($("file").files[0]));
  $("clear-file").addEventListener("click", clearFile);
  $("column").addEventListener("change", describe);
  $("filter").addEventListener("change", () => {
    view.filter = $("filter").value;
    view.page = 0;
    render();
  });
  $("prev").addEventListener("click", () => {
    view.page -= 1;
    render();
  });
  $("next").addEventListener("click", () => {
    view.page += 1;
    render();
  });
  for (const th of document.querySelectorAll("#table th[data-sort]")) {
    th.querySelector("button").addEventListener("click", () => {
      view.dir = view.sort === th.dataset.sort ? -view.dir : 1;
      view.sort = th.dataset.sort;
      view.page = 0;
      render();
    });
  }
  $("download").addEventListener("click", download);
  const zone = $("view-score");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("dropping");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dropping"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dropping");
    const dropped = event.dataTransfer?.files?.[0];
    if (dropped) useFile(dropped);
  });
}
