"""The Loki label set the dashboards rely on, a stream-selector builder, and a LogQL checker.

Label set (the log shipper, Grafana Alloy in deploy/alloy/, must attach exactly these):

    job       "sentimon": the API's own lines (its container's or process's stdout and stderr);
              "syslog": the host's syslog
    stream    "stdout" (requests and app events, level < error) or "stderr" (errors, with
              tracebacks); only on job="sentimon"
    instance  the host or container that wrote the line (free value)

The API writes JSON lines; `| json` turns their fields (JSON_FIELDS) into labels that later
stages filter on, e.g. `{job="sentimon", stream="stdout"} | json | event="request" | status >= 500`.
Syslog lines are plain text: filter them with line filters (`|=`, `|~`) only.

The checker is structural: it parses the small LogQL subset the dashboards use and rejects
unknown stream labels or values, unknown stages, JSON fields used before `| json`, and syntax
errors. It does not evaluate anything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

# Stream label -> the values it may take (None: any value).
STREAM_LABELS: Mapping[str, frozenset[str] | None] = {
    "job": frozenset({"sentimon", "syslog"}),
    "stream": frozenset({"stdout", "stderr"}),
    "instance": None,
}
SYSLOG_JOB = "syslog"

# Keys of the API's JSON lines: sentimon.logs.setup.JsonFormatter (ts, level, logger, message,
# request_id, error, traceback, and `extra=` keys such as event and model) and the access log
# of sentimon.api.middleware (method, path, status, duration_ms, client).
JSON_FIELDS = frozenset(
    {
        "ts",
        "level",
        "logger",
        "message",
        "request_id",
        "event",
        "model",
        "error",
        "traceback",
        "method",
        "path",
        "status",
        "duration_ms",
        "client",
    }
)

PARSERS = frozenset({"json", "logfmt"})
AGGREGATIONS = frozenset({"sum", "avg", "min", "max", "count", "topk", "bottomk", "sort_desc"})
RANGE_FUNCTIONS = frozenset({"count_over_time", "rate", "bytes_over_time", "bytes_rate"})
_LINE_FILTERS = frozenset({"|=", "!=", "|~", "!~"})
_MATCH_OPS = frozenset({"=", "!=", "=~", "!~"})
_COMPARE_OPS = frozenset({"=", "!=", "=~", "!~", "==", ">", ">=", "<", "<="})

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>"(?:[^"\\]|\\.)*"|`[^`]*`)
    | (?P<range>\[[0-9]+(?:ms|s|m|h|d|w)\])
    | (?P<number>[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d|w)?)
    | (?P<op>\|=|\|~|!=|!~|=~|==|>=|<=|=|>|<|\||,|\{|\}|\(|\))
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_TEMPLATE_FIELD = re.compile(r"\{\{-?\s*\.([A-Za-z_][A-Za-z0-9_]*)")


class LogQLError(ValueError):
    """A LogQL expression the checker rejects."""


def selector(**labels: str) -> str:
    """`selector(job="$job", stream="stdout")` -> `{job="$job", stream="stdout"}`."""
    unknown = set(labels) - set(STREAM_LABELS)
    if unknown:
        raise ValueError(f"not in the Loki label set: {sorted(unknown)}")
    return "{" + ", ".join(f"{name}={json.dumps(value)}" for name, value in labels.items()) + "}"


def check(expr: str) -> None:
    """Raise LogQLError unless `expr` (variables already substituted) is a valid query."""
    parser = _Parser(expr)
    parser.query()
    if parser.peek() is not None:
        raise LogQLError(f"unexpected {parser.peek()!r} in {expr!r}")


class _Parser:
    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(expr):
            if expr[pos:].strip() == "":
                break
            match = _TOKEN.match(expr, pos)
            if match is None or match.end() == pos:
                raise LogQLError(f"cannot read {expr[pos:]!r} in {expr!r}")
            kind = match.lastgroup
            assert kind is not None
            self.tokens.append((kind, match.group(kind)))
            pos = match.end()
        self.index = 0
        self.parsed = False  # whether a parser stage (json, logfmt) ran

    def peek(self) -> str | None:
        return self.tokens[self.index][1] if self.index < len(self.tokens) else None

    def take(self, kind: str | None = None, value: str | None = None) -> str:
        if self.index >= len(self.tokens):
            raise LogQLError(f"unexpected end of {self.expr!r}")
        token_kind, token = self.tokens[self.index]
        if (kind is not None and token_kind != kind) or (value is not None and token != value):
            raise LogQLError(f"expected {value or kind}, got {token!r} in {self.expr!r}")
        self.index += 1
        return token

    def query(self) -> None:
        if self.peek() == "{":
            self.log_query()
        else:
            self.metric_query()

    def metric_query(self) -> None:
        name = self.take("ident")
        if name in RANGE_FUNCTIONS:
            self.take("op", "(")
            self.log_query()
            self.take("range")
            self.take("op", ")")
        elif name in AGGREGATIONS:
            grouped = self.grouping()
            self.take("op", "(")
            if name in {"topk", "bottomk"}:
                self.take("number")
                self.take("op", ",")
            self.metric_query()
            self.take("op", ")")
            grouped += self.grouping()
            for label in grouped:  # checked once the inner query's parsers are known
                self.check_label(label, allow_fields=True)
        else:
            raise LogQLError(f"unknown function {name!r} in {self.expr!r}")

    def grouping(self) -> list[str]:
        names: list[str] = []
        if self.peek() in {"by", "without"}:
            self.take("ident")
            self.take("op", "(")
            names.append(self.take("ident"))
            while self.peek() == ",":
                self.take("op", ",")
                names.append(self.take("ident"))
            self.take("op", ")")
        return names

    def label_name(self, allow_fields: bool) -> str:
        return self.check_label(self.take("ident"), allow_fields)

    def check_label(self, name: str, allow_fields: bool) -> str:
        if name in STREAM_LABELS or name == "__error__":
            return name
        if allow_fields and name in JSON_FIELDS:
            if not self.parsed:
                raise LogQLError(f"field {name!r} used before `| json` in {self.expr!r}")
            return name
        raise LogQLError(f"unknown label {name!r} in {self.expr!r}")

    def string(self) -> str:
        token = self.take("string")
        if token.startswith("`"):
            return token[1:-1]
        try:
            return str(json.loads(token))
        except json.JSONDecodeError as exc:
            raise LogQLError(f"bad string {token!r} in {self.expr!r}: {exc}") from None

    def log_query(self) -> None:
        self.stream_selector()
        while self.peek() is not None and (self.peek() in _LINE_FILTERS or self.peek() == "|"):
            self.stage()

    def stream_selector(self) -> None:
        self.take("op", "{")
        positive = False
        while True:
            name = self.take("ident")
            if name not in STREAM_LABELS:
                raise LogQLError(f"stream label {name!r} is not in the label set: {self.expr!r}")
            op = self.take("op")
            if op not in _MATCH_OPS:
                raise LogQLError(f"bad matcher operator {op!r} in {self.expr!r}")
            value = self.string()
            allowed = STREAM_LABELS[name]
            if op == "=" and allowed is not None and value not in allowed:
                raise LogQLError(f"{name}={value!r} is not one of {sorted(allowed)}: {self.expr!r}")
            if op in {"=", "=~"} and value not in {"", ".*"}:
                positive = True
            if self.peek() != ",":
                break
            self.take("op", ",")
        self.take("op", "}")
        if not positive:
            raise LogQLError(f"the stream selector matches everything: {self.expr!r}")

    def stage(self) -> None:
        op = self.take("op")
        if op in _LINE_FILTERS:
            self.string()
            return
        word = self.take("ident")
        if word in PARSERS:
            self.parsed = True
        elif word == "line_format":
            for field in _TEMPLATE_FIELD.findall(self.string()):
                if field not in JSON_FIELDS:
                    raise LogQLError(f"line_format uses unknown field {field!r}: {self.expr!r}")
        elif word == "drop" or word == "keep":
            self.label_name(allow_fields=True)
            while self.peek() == ",":
                self.take("op", ",")
                self.label_name(allow_fields=True)
        else:  # a label filter: name op value
            self.index -= 1
            self.label_name(allow_fields=True)
            compare = self.take("op")
            if compare not in _COMPARE_OPS:
                raise LogQLError(f"bad label filter operator {compare!r} in {self.expr!r}")
            if self.peek() is not None and self.tokens[self.index][0] == "number":
                self.take("number")
            else:
                self.string()
