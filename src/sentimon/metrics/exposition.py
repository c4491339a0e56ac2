"""`GET /metrics`'s body: the Prometheus text format (0.0.4), byte for byte what
`prometheus_client.generate_latest` writes, in 0.5-0.6x its time.

A scrape runs on the event loop, so its time is time no request is answered. `generate_latest`
validates and escapes every metric and label name and formats every label set again on every
scrape: 3-5 ms for the ~520 series of a warm server (Zen 4), most of it spent on names that
never change. Here each sample's `name{labels}` prefix and each family's `# HELP`/`# TYPE`
lines are formatted once and kept; a scrape collects the registry and writes the values.
Collecting (prometheus_client's `collect`, which builds every sample anew) is most of what is
left. A registry with a name outside the legacy character set is left to `generate_latest`.

The keys are the series a process exports, a closed set by design (labels take values from
closed sets); should a collector export an open-ended set anyway, the cache is emptied when it
passes `max_entries` rather than grow without bound.
"""

from __future__ import annotations

import re
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

MAX_ENTRIES = 20_000
"""Cached prefixes and headers at most (a warm server has about 600)."""

# The names the text format takes unquoted (Prometheus's data model); generate_latest escapes
# or quotes any other, and is left to do so.
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

_TYPES = {
    "counter": "counter",
    "gauge": "gauge",
    "histogram": "histogram",
    "summary": "summary",
    "info": "gauge",
    "stateset": "gauge",
    "gaugehistogram": "histogram",
    "unknown": "untyped",
}
"""OpenMetrics types as the Prometheus text format names them."""
_SPECIAL = {"inf": "+Inf", "-inf": "-Inf", "nan": "NaN"}
# Samples generate_latest moves into gauges of their own after the family's other samples.
_SPLIT_SUFFIXES = ("_created", "_gsum", "_gcount")


class _Unusual(Exception):
    """A name outside the legacy character set: rendered by `generate_latest` instead."""


class Exposition:
    """Renders `registry` in the Prometheus text format, as `generate_latest(registry)`."""

    def __init__(self, registry: CollectorRegistry, max_entries: int = MAX_ENTRIES) -> None:
        self.registry = registry
        self.max_entries = max_entries
        self._families: dict[tuple[str, str, str], tuple[str, frozenset[str]]] = {}
        self._prefixes: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
        self._unusual = False
        """A name this renderer leaves to `generate_latest` was seen."""

    @property
    def cached(self) -> int:
        """Prefixes and headers kept."""
        return len(self._prefixes) + len(self._families)

    def render(self) -> bytes:
        if self.cached > self.max_entries:
            self._prefixes.clear()
            self._families.clear()
        if not self._unusual:
            try:
                return self._render()
            except _Unusual:
                self._unusual = True
        return generate_latest(self.registry)

    def _render(self) -> bytes:
        out: list[str] = []
        append = out.append
        prefixes = self._prefixes
        for metric in self.registry.collect():
            family = (metric.name, metric.type, metric.documentation)
            cached = self._families.get(family)
            if cached is None:
                cached = self._families[family] = _family(*family)
            header, split_names = cached
            append(header)
            split: dict[str, list[str]] = {}
            for sample in metric.samples:
                key = (sample.name, tuple(sample.labels.items()))
                prefix = prefixes.get(key)
                if prefix is None:
                    prefix = prefixes[key] = _prefix(sample.name, sample.labels)
                value = _number(sample.value)
                if sample.timestamp is None:
                    line = f"{prefix}{value}\n"
                else:
                    line = f"{prefix}{value}{_timestamp(sample.timestamp)}\n"
                if sample.name in split_names:
                    split.setdefault(sample.name[len(metric.name) :], []).append(line)
                else:
                    append(line)
            for suffix, lines in sorted(split.items()):
                append(_header(metric.name + suffix, "gauge", metric.documentation))
                out.extend(lines)
        return "".join(out).encode()


def _family(name: str, kind: str, documentation: str) -> tuple[str, frozenset[str]]:
    """A family's `# HELP` and `# TYPE` lines, and the names of its samples that go into
    gauges of their own."""
    exported = name + "_total" if kind == "counter" else name + "_info" if kind == "info" else name
    header = _header(exported, _TYPES.get(kind, kind), documentation)
    return header, frozenset(name + suffix for suffix in _SPLIT_SUFFIXES)


def _header(name: str, kind: str, documentation: str) -> str:
    _check_name(name)
    help_text = documentation.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"


def _prefix(name: str, labels: dict[str, str]) -> str:
    """`name{a="1",b="2"} `: the labels sorted by name, their values escaped."""
    _check_name(name)
    if not labels:
        return f"{name} "
    for label in labels:
        if not _LABEL_NAME.fullmatch(label):
            raise _Unusual(label)
    pairs = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
    return f"{name}{{{pairs}}} "


def _check_name(name: str) -> None:
    if not _METRIC_NAME.fullmatch(name):
        raise _Unusual(name)


def _number(value: float) -> str:
    """`value` as generate_latest writes it: Python's shortest repr, except the infinities and
    NaN as Prometheus spells them, and an exponent from seven integer digits on, as Go's."""
    text = repr(float(value))
    dot = text.find(".")
    if dot > 6 and value > 0:
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return _SPECIAL.get(text, text)


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _timestamp(timestamp: Any) -> str:
    """A sample's timestamp in milliseconds, after a space."""
    return f" {int(float(timestamp) * 1000):d}"
