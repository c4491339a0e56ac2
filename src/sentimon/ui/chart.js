// Small line charts drawn as SVG in the page: no library, no request.

const NS = "http://www.w3.org/2000/svg";
const HEIGHT = 150;
const PAD = { left: 46, right: 8, top: 8, bottom: 20 };

function node(tag, attributes = {}, text = "") {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attributes)) n.setAttribute(k, String(v));
  if (text) n.textContent = text;
  return n;
}

/** The smallest of 1, 2, 5 x 10^k at or above `value` (and above 0). */
export function niceCeiling(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value * 0.999999) return step * power;
  return 10 * power;
}

/**
 * Draw `lines` ([{name, points: [[x, y|null]...], className, dashed}]) into `svg` over
 * [start, end] seconds, y from 0 to `yMax` (or a nice ceiling of the data); `format(y)`
 * labels the axis. Gaps (y null) break a line. Returns the y maximum used.
 */
export function lineChart(svg, { lines, start, end, yMax = null, format = String }) {
  const width = Math.max(200, Math.round(svg.getBoundingClientRect().width) || 600);
  svg.setAttribute("viewBox", `0 0 ${width} ${HEIGHT}`);
  svg.setAttribute("height", String(HEIGHT));
  const values = lines.flatMap((l) => l.points.map((p) => p[1])).filter((y) => y != null);
  const top = yMax ?? niceCeiling(Math.max(0, ...values));
  const x = (t) => PAD.left + ((t - start) / Math.max(end - start, 1)) * (width - PAD.left - PAD.right);
  const y = (v) => PAD.top + (1 - Math.min(v, top) / top) * (HEIGHT - PAD.top - PAD.bottom);
  const parts = [];
  for (const fraction of [0, 0.5, 1]) {
    const v = top * fraction;
    parts.push(node("line", { class: "grid", x1: PAD.left, x2: width - PAD.right, y1: y(v), y2: y(v) }));
    parts.push(node("text", { class: "axis", x: PAD.left - 4, y: y(v) + 4, "text-anchor": "end" }, format(v)));
  }
  const span = end - start;
  const ago = span < 120 ? `−${Math.round(span)} s` : `−${Math.round(span / 60)} min`;
  parts.push(node("text", { class: "axis", x: PAD.left, y: HEIGHT - 4 }, ago));
  parts.push(node("text", { class: "axis", x: width - PAD.right, y: HEIGHT - 4, "text-anchor": "end" }, "now"));
  for (const line of lines) {
    let segment = [];
    const flush = () => {
      if (segment.length === 1) {
        const [px, py] = segment[0];
        parts.push(node("circle", { class: `dot ${line.className}`, cx: px, cy: py, r: 2 }));
      } else if (segment.length > 1) {
        const attributes = { class: `line ${line.className}`, points: segment.map((p) => p.join(",")).join(" ") };
        if (line.dashed) attributes["stroke-dasharray"] = "5 4";
        parts.push(node("polyline", attributes));
      }
      segment = [];
    };
    for (const [t, v] of line.points) {
      if (v == null || t < start) flush();
      else segment.push([x(t).toFixed(1), y(v).toFixed(1)]);
    }
    flush();
  }
  svg.replaceChildren(...parts);
  return top;
}

/** A legend: one swatch and name per line. */
export function legend(list, lines) {
  list.replaceChildren(
    ...lines.map((line) => {
      const item = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = `swatch ${line.className}${line.dashed ? " dashed" : ""}`;
      swatch.setAttribute("aria-hidden", "true");
      item.append(swatch, document.createTextNode(line.name));
      return item;
    }),
  );
}
