// Texts from pasted lines or a .txt, .csv or .jsonl file, each with the row it came from.

export const MAX_FILE_BYTES = 10 * 1024 * 1024;
export const MAX_TEXTS = 20000;
const TEXT_NAMES = ["text", "tweet", "content", "body", "message", "comment", "review", "sentence"];

/** RFC 4180 CSV: quoted fields with "" escapes, commas and newlines inside quotes. */
export function parseCsv(source) {
  const rows = [];
  let row = [];
  let field = "";
  let quoted = false;
  let i = 0;
  const text = source.replace(/^\uFEFF/, "");
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 1;
        } else {
          quoted = false;
        }
      } else {
        field += c;
      }
    } else if (c === '"' && field === "") {
      quoted = true;
    } else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i += 1;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else {
      field += c;
    }
    i += 1;
  }
  if (field !== "" || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** The column most likely to hold the text: a usual name, else the first. */
export function guessColumn(columns) {
  const lower = columns.map((c) => c.trim().toLowerCase());
  const found = TEXT_NAMES.find((name) => lower.includes(name));
  return found ? lower.indexOf(found) : 0;
}

/**
 * A parsed source: {kind, columns, column, texts(column), problems}; `texts(column)` gives
 * [{row, text}] (row: 1-based line or record number in the file).
 */
export function parseSource(name, content) {
  const lower = name.toLowerCase();
  if (lower.endsWith(".csv")) return csvSource(content);
  if (lower.endsWith(".jsonl") || lower.endsWith(".ndjson")) return jsonlSource(content);
  return linesSource(content);
}

export function linesSource(content) {
  const lines = content.replace(/^\uFEFF/, "").split(/\r?\n/);
  const items = [];
  lines.forEach((line, i) => {
    if (line.trim()) items.push({ row: i + 1, text: line });
  });
  return { kind: "lines", columns: [], column: 0, texts: () => items, problems: [] };
}

function csvSource(content) {
  const rows = parseCsv(content);
  const columns = rows.length ? rows[0] : [];
  const body = rows.slice(1);
  return {
    kind: "csv",
    columns,
    column: guessColumn(columns),
    texts: (column) =>
      body
        .map((r, i) => ({ row: i + 2, text: r[column] ?? "" }))
        .filter((item) => item.text.trim()),
    problems: [],
  };
}

function jsonlSource(content) {
  const records = [];
  const problems = [];
  content
    .replace(/^\uFEFF/, "")
    .split(/\r?\n/)
    .forEach((line, i) => {
      if (!line.trim()) return;
      try {
        const value = JSON.parse(line);
        if (value && typeof value === "object" && !Array.isArray(value)) records.push({ row: i + 1, value });
        else problems.push(i + 1);
      } catch (error) {
        problems.push(i + 1);
      }
    });
  const columns = [];
  for (const { value } of records.slice(0, 100)) {
    for (const [key, v] of Object.entries(value)) if (typeof v === "string" && !columns.includes(key)) columns.push(key);
  }
  return {
    kind: "jsonl",
    columns,
    column: guessColumn(columns),
    texts: (column) =>
      records
        .map(({ row, value }) => ({ row, text: typeof value[columns[column]] === "string" ? value[columns[column]] : "" }))
        .filter((item) => item.text.trim()),
    problems: problems.length
      ? [`${problems.length} line${problems.length === 1 ? " is" : "s are"} not a JSON object (first: line ${problems[0]}) and ${problems.length === 1 ? "was" : "were"} skipped`]
      : [],
  };
}
