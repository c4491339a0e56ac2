// Calls to the API that serves this page, and its errors as sentences.
// Text from the API only ever goes into textContent or a form value, never into HTML.

export const $ = (id) => document.getElementById(id);
const API = new URL("..", document.baseURI); // the API serves this page at /ui/

/** A readable sentence for an API error body ({"error", "error_type"}) and status. */
export function explain(status, body, headers) {
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

const CANCELLED = Object.freeze({ ok: false, status: 0, aborted: true, message: "Cancelled." });

/**
 * fetch() against the API: {ok, status, body} with the answer's JSON body, or {ok: false,
 * status, body, message, retryAfter}; status 0 when the service cannot be reached or the call
 * was aborted (then also aborted: true, whether before the answer began or while it arrived).
 */
export async function call(path, options = {}) {
  let response;
  try {
    response = await fetch(new URL(path, API), {
      ...options,
      headers: { "content-type": "application/json", ...(options.headers || {}) },
    });
  } catch {
    if (options.signal?.aborted) return CANCELLED;
    return { ok: false, status: 0, aborted: false, message: "The service cannot be reached." };
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Cancelled while the body was still arriving: the answer is lost, not empty.
    if (options.signal?.aborted) return CANCELLED;
  }
  if (response.ok && body === null) {
    const message = `The service's answer could not be read (HTTP ${response.status}).`;
    return { ok: false, status: response.status, body, message, retryAfter: null };
  }
  if (!response.ok) {
    const retry = Number(response.headers.get("Retry-After"));
    return {
      ok: false,
      status: response.status,
      body,
      message: explain(response.status, body, response.headers),
      retryAfter: Number.isFinite(retry) && retry > 0 ? retry : null,
    };
  }
  return { ok: true, status: response.status, body };
}

export function showError(element, message) {
  element.textContent = message;
  element.hidden = !message;
}

export function percent(p) {
  return `${(100 * p).toFixed(1)}%`;
}

/** An element with a class and text. */
export function el(tag, className = "", text = "") {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

/** The words of a feedback answer (POST /feedback's body). */
export function describeFeedback(fb) {
  return fb.correct ? `right (${fb.predicted})` : `wrong; right label ${fb.label ?? "not given"}`;
}

export const SOURCE = "sentimon-ui";
