"""PromQL building blocks shared by the dashboards (the recording rules cover the rest).

Conventions: every API query selects `job="$job"`; rates use `$__rate_interval`; a query that is
legitimately empty on a healthy service (no 5xx yet, no alerts firing) is completed with a zero
series so its panel shows 0 instead of "No data".
"""

from __future__ import annotations

import json
from collections.abc import Sequence

JOB = 'job="$job"'
RATE_INTERVAL = "$__rate_interval"

# Readable names for the series of the HTTP metrics' `handler` label.
HANDLER_LEGEND = "{{handler}}"


def selector(metric: str, *matchers: str, job: str = JOB) -> str:
    """`selector("up", 'mode="idle"')` -> `up{job="$job", mode="idle"}`."""
    return f"{metric}{{{', '.join((job, *matchers))}}}"


def _by(labels: Sequence[str]) -> str:
    return f" by ({', '.join(labels)})" if labels else ""


def rate(
    metric: str,
    *matchers: str,
    by: Sequence[str] = (),
    job: str = JOB,
    window: str = RATE_INTERVAL,
    func: str = "rate",
) -> str:
    """`sum by (...) (rate(metric{job="$job", ...}[$__rate_interval]))`."""
    return f"sum{_by(by)} ({func}({selector(metric, *matchers, job=job)}[{window}]))"


def quantile(q: float, histogram: str, *matchers: str, by: Sequence[str] = ()) -> str:
    """`histogram_quantile(q, ...)` over a histogram's `_bucket` rates, per `by` labels."""
    return f"histogram_quantile({q}, {rate(histogram + '_bucket', *matchers, by=('le', *by))})"


def mean(histogram: str, *matchers: str, by: Sequence[str] = ()) -> str:
    """Mean observation of a histogram or summary: rate of `_sum` over rate of `_count`."""
    return (
        f"{rate(histogram + '_sum', *matchers, by=by)}"
        f" / {rate(histogram + '_count', *matchers, by=by)}"
    )


def or_zero(expr: str) -> str:
    """`expr`, or a single 0 when it has no series (`on()` keeps the 0 out otherwise)."""
    return f"{expr} or on() vector(0)"


def or_none(expr: str, label: str) -> str:
    """`expr`, or one 0 series labelled `label="none"` when it has no series."""
    return f'{expr} or on() label_replace(vector(0), "{label}", "none", "", "")'


def or_nan(expr: str, like: str) -> str:
    """`expr`, or NaN for each series of `like` that `expr` lacks.

    For statistics that are absent by design when there is nothing to compute them from
    (feedback agreement with no feedback in the window): the panel shows the NaN as "no
    feedback" instead of a "No data" that could as well be a broken query. `like` is a series
    that always exists with the same labels (the feedback count). `+ 0` drops the metric name,
    as `like * NaN` does, so a label set stays one series whichever side it comes from.
    """
    return f"({expr}) + 0 or {like} * NaN"


def zero_filled_ratio(metric: str, match: str, by: Sequence[str], window: str) -> str:
    """Share of `metric` matching `match`, 0 (not empty) for groups without a match.

    Same pattern as the recording rules: the HTTP metrics have a status series only from
    the first response with that status, so a healthy service has no 5xx series at all.
    """
    part = rate(metric, match, by=by, window=window)
    whole = rate(metric, by=by, window=window)
    return f"({part} or {whole} * 0) / {whole}"


def filesystems(left: str, op: str, right: str, fstype_exclude: str, job: str) -> str:
    """`left op right` per filesystem: the disk alert's filesystems, plus `/` whatever its type.

    The alert skips pseudo and container filesystems (overlay) and read-only ones; a
    container's root is often overlay, so `/` is always shown too.
    """
    fs = f"fstype!~{json.dumps(fstype_exclude)}"
    slash = 'mountpoint="/"'
    real = (
        f"{selector(left, fs, job=job)} {op} {selector(right, fs, job=job)}"
        " unless on (instance, device, mountpoint)"
        f" {selector('node_filesystem_readonly', job=job)} == 1"
    )
    root = f"{selector(left, slash, job=job)} {op} {selector(right, slash, job=job)}"
    return f"({real}) or ({root})"


def disk_free_ratio(fstype_exclude: str, job: str) -> str:
    """Free share per filesystem (see `filesystems`)."""
    return filesystems(
        "node_filesystem_avail_bytes", "/", "node_filesystem_size_bytes", fstype_exclude, job
    )
