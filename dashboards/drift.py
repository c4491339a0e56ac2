"""Drift rows of the Drift & feedback dashboard: the live label mix, confidence and input
length against the model's reference profile, their chi-square tests and p-values, and PSI;
text drift, the texts' sentence embedding against the reference's (a chi-square over its
whitened principal components and a z on the residual outside them).

Every statistic comes from the `sentimon.rules.drift` recording rules, which sum the counters
of all replicas before testing (a per-replica test would multiply the false alarms). The
series are absent, not 0, when the model has no reference profile, when there were no
predictions in the window, and while two model revisions serve at once (drift is silenced
during a rollout); stats show that as "not measured". The critical values are series too
(`sentiment_drift_critical_value`, from the reference's degrees of freedom); the p-value lines
are the significance levels they were computed at (`sentimon.metrics.drift.ALPHAS`).

Text drift has series only when the reference profile has a text-embedding basis for the
arithmetic that serves (fp32, or the int8 recipe and CPU class): GET /info, `drift.text`,
says which and why not.
"""

from __future__ import annotations

from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models import dashboard as model

from dashboards.alerts import Thresholds
from dashboards.common import Doc, Row, Steps, steps
from dashboards.panels import Panels, Q
from dashboards.promql import or_nan, selector
from sentimon.metrics.drift import ALPHAS

PanelList = list[Builder[model.Panel]]

NOT_MEASURED = "not measured"
REVISIONS = selector("job:sentiment_model_revisions:count")
# Fixed colours for the usual label names, so a live line and its dashed reference match.
SENTIMENT_COLORS = {"^negative": "red", "^neutral": "blue", "^positive": "green"}
REFERENCE_COLOR = "text"

LABEL_MIX_ALERTS = ("SentimentLabelMixDrift", "SentimentLabelMixDriftInfo")
CONFIDENCE_ALERTS = ("SentimentConfidenceDrift",)
TOKENS_ALERTS = ("SentimentInputLengthDrift",)
TEXT_ALERTS = ("SentimentTextDrift",)
# The tests that count predictions (label mix) or their histograms (confidence, tokens).
PREDICTION_ALERTS = (*LABEL_MIX_ALERTS, *CONFIDENCE_ALERTS, *TOKENS_ALERTS)
ALL_ALERTS = (*PREDICTION_ALERTS, *TEXT_ALERTS)

# statistic (the `statistic` label of the critical values) -> metric part of its rules.
METRICS = {
    "label_mix": "sentiment_label_mix",
    "confidence": "sentiment_confidence_drift",
    "input_tokens": "sentiment_input_tokens_drift",
    "text": "sentiment_text_drift",
}
# The histograms tested against the reference (the `histogram` label of its bucket shares).
HISTOGRAMS = {
    "confidence": "sentiment_prediction_confidence",
    "input_tokens": "sentiment_input_tokens",
}
NAMES = {
    "label_mix": "label mix",
    "confidence": "confidence",
    "input_tokens": "input length",
    "text": "text embedding",
}
TITLES = {"label_mix": "Label-mix", "confidence": "Confidence", "input_tokens": "Input-length"}
RESIDUAL_Z = "job:sentiment_text_drift_residual"

SILENCED = (
    f'Absent ("{NOT_MEASURED}" on the stats) without a reference profile (GET /info says '
    "why), with no predictions in the window, and while two model revisions serve: drift is "
    "silenced during a rollout."
)


TEXT_SILENCED = (
    f'Absent ("{NOT_MEASURED}" on the stats) without a reference profile, when the profile '
    "has no text-embedding basis for the arithmetic that serves (fp32, or the int8 recipe and "
    "CPU class: GET /info, drift.text, says which and why), with SENTIMON_TEXT_DRIFT=false, "
    "with no texts in the window, and while two model revisions serve."
)


def measured(expr: str) -> str:
    """A job-level drift series, NaN ("not measured") when it is absent."""
    return or_nan(expr, REVISIONS)


def stat_series(statistic: str, stat: str) -> str:
    """`job:<metric>:<stat>{job="$job"}`, e.g. the label mix's `chi2_5m`."""
    return selector(f"job:{METRICS[statistic]}:{stat}")


def critical(statistic: str, severity: str = "critical") -> str:
    return selector(
        "job_statistic_severity:sentiment_drift_critical_value:max",
        f'statistic="{statistic}"',
        f'severity="{severity}"',
    )


def p_value_steps() -> Steps:
    """Red under the critical significance, orange under the info one, green above."""
    colours = ("orange", "green")
    return steps("red", *zip(sorted(ALPHAS.values()), colours, strict=True))


def sci(value: float) -> str:
    """0.0001 -> "1e-4"."""
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _alpha(severity: str) -> str:
    return f"p < {sci(ALPHAS[severity])}"


# (pad, RE2 regex on `le`): the prefix that makes a bucket's upper edge sort as text, by
# the digits before its point; the last edge, +Inf, sorts after every number.
PADS = (("00", r"\d\..*"), ("0", r"\d\d\..*"), ("z", r"\+Inf"))


def binned(expr: str) -> str:
    """`expr` per merged bin (lower, le], labelled for a bar chart: `bin` ("0.8 to 0.9") for
    the axis, and `order`, the upper edge zero-padded to sort as text ("000.9", "016.0",
    "z+Inf"). Only these labels are kept (no metric name, no `histogram`), so the queries of
    one chart join on them."""
    padded = f"sum by (job, lower, le) ({expr})"
    for pad, pattern in PADS:
        escaped = pattern.replace("\\", "\\\\")  # a PromQL string: backslashes doubled
        padded = f'label_replace({padded}, "pad", "{pad}", "le", "{escaped}")'
    ordered = f'label_join({padded}, "order", "", "pad", "le")'
    return f'label_join({ordered}, "bin", " to ", "lower", "le")'


def rows(p: Panels, th: Thresholds) -> list[Row]:
    return [
        Row("Label-mix drift", _label_mix_row(p, th)),
        Row("Confidence and input-length drift", _distribution_row(p, th)),
        Row("Text drift", _text_row(p, th)),
        Row("Drift p-values and PSI", _tests_row(p)),
    ]


def _label_mix_row(p: Panels, th: Thresholds) -> PanelList:
    gate = f"{th.drift_n_min:g}"
    return [
        p.stat(
            "Label-mix chi-square (5m)",
            Doc(
                "Pearson chi-square of the labels predicted over the last 5 minutes, all "
                "replicas, against the reference profile's label shares: N x sum over labels "
                "of (live share - reference share)^2 / reference share. Beside it the critical "
                f"values the alerts compare it with ({_alpha('critical')} and "
                f"{_alpha('info')} for the reference's degrees of freedom). {SILENCED}",
                f"Chi-square above the critical value with N >= {gate} for 2 minutes: the mix "
                "moved beyond chance. It grows with N, so heavy traffic makes a small move "
                "significant: see the mix panel for which label moved and by how much.",
                LABEL_MIX_ALERTS,
            ),
            "none",
            [
                Q(measured(stat_series("label_mix", "chi2_5m")), "chi-square"),
                Q(critical("label_mix"), "critical"),
                Q(critical("label_mix", "info"), "info"),
            ],
            decimals=1,
            nan_text=NOT_MEASURED,
            graph=False,
            span=6,
        ),
        p.stat(
            "Label-mix p-value (5m)",
            Doc(
                "Probability of a chi-square at least this large if the last 5 minutes of "
                "traffic followed the reference mix (exact for three labels, exp(-chi2 / 2); "
                f"Wilson-Hilferty otherwise). {SILENCED}",
                f"Red: under {sci(ALPHAS['critical'])}, the critical alert's level; orange: "
                f"under {sci(ALPHAS['info'])}, the info alert's. Either needs N >= {gate} too.",
                LABEL_MIX_ALERTS,
            ),
            "sci",
            [Q(measured(stat_series("label_mix", "pvalue5m")))],
            thresholds=p_value_steps(),
            nan_text=NOT_MEASURED,
            span=6,
        ),
        p.stat(
            "Predictions tested (5m)",
            Doc(
                "N: predictions over the last 5 minutes, all replicas, that the label-mix test "
                "counts (increase() extrapolates to the window's edges, so up to ~5% high). "
                "The confidence and input-length tests have their own N, normally close to "
                "this one, on their chi-square panels.",
                f"Under {gate}: no drift alert judges (chi-square needs enough predictions "
                "per label); the statistics are still drawn, and are noisy.",
                PREDICTION_ALERTS,
            ),
            "short",
            [Q(stat_series("label_mix", "n5m"))],
            thresholds=steps("orange", (th.drift_n_min, "green")),
            decimals=0,
            span=6,
        ),
        p.stat(
            "Model revisions serving",
            Doc(
                "Distinct model revisions (model and revision of sentiment_model_info) that "
                "served over the last 5 minutes. While more than one serves, every drift "
                "series is absent: the live mix blends two models and no reference fits it.",
                "Above 1 for longer than a rollout takes: a stuck deployment, and no drift "
                "alert can fire meanwhile.",
                ALL_ALERTS,
            ),
            "none",
            [Q(REVISIONS)],
            mappings={"1": ("1", "green"), "2": ("2: drift off", "orange")},
            decimals=0,
            graph=False,
            span=6,
        ),
        p.timeseries(
            "Label mix against the reference",
            Doc(
                "Share of each predicted label over a sliding 5 minutes, all replicas (solid), "
                "against its share in the reference profile (dashed): the mix the model "
                f"produced on its reference texts. {SILENCED}",
                "A solid line away from its dashed one for minutes: the traffic, or what the "
                "model makes of it, changed. The chi-square beside says whether that is "
                "beyond chance at this N; the design case is a 10-point move of the most "
                "frequent label.",
                LABEL_MIX_ALERTS,
            ),
            "percentunit",
            [
                Q(selector("job_sentiment:sentiment_label_mix:share5m"), "{{sentiment}}"),
                Q(
                    selector("job_sentiment:sentiment_reference_share:max"),
                    "{{sentiment}} (reference)",
                ),
            ],
            dashed=[r"\(reference\)$"],
            colors=SENTIMENT_COLORS,
            min_value=0,
            max_value=1,
            span=12,
        ),
        _chi_square(p, th, "label_mix", ("critical", "info"), LABEL_MIX_ALERTS),
    ]


def _chi_square(
    p: Panels,
    th: Thresholds,
    statistic: str,
    severities: tuple[str, ...],
    alerts: tuple[str, ...],
) -> Builder[model.Panel]:
    name = NAMES[statistic]
    lines = " and ".join(f"{s} ({_alpha(s)})" for s in severities)
    plural = "s" if len(severities) > 1 else ""
    return p.timeseries(
        f"{TITLES[statistic]} chi-square against its critical value{plural}",
        Doc(
            f"Chi-square of the {name} over a sliding 5 minutes, all replicas, against the "
            f"reference profile, with the critical value{plural} (dashed: {lines}) and N, "
            f"the predictions tested, on the right axis. {SILENCED}",
            f"Above the critical line with N >= {th.drift_n_min:g} for 2 minutes: the alert "
            "fires. Chi-square scales with N: the same small shift crosses the line at high "
            "traffic and not at low.",
            alerts,
        ),
        "none",
        [
            Q(stat_series(statistic, "chi2_5m"), "chi-square (5m)"),
            *(Q(critical(statistic, s), f"{s} ({_alpha(s)})") for s in severities),
            Q(stat_series(statistic, "n5m"), "N (5m)"),
        ],
        dashed=[f"^{s} " for s in severities],
        right_axis={"^N ": "short"},
        min_value=0,
        span=12,
    )


def _distribution(
    p: Panels, statistic: str, title: str, what: str, bad: str, alerts: tuple[str, ...]
) -> Builder[model.Panel]:
    histogram = HISTOGRAMS[statistic]
    reference = selector(
        "job_histogram_lower_le:sentiment_reference_bucket_share:max", f'histogram="{histogram}"'
    )
    return p.barchart(
        title,
        Doc(
            f"{what} Live over the last 5 minutes and hour, all replicas, against the "
            "reference profile. A bin runs from its lower edge (excluded) to its upper edge "
            "(included): the exported buckets, merged until each holds at least 2% of the "
            f"reference, exactly the bins the chi-square tests. {SILENCED}",
            bad,
            alerts,
        ),
        "percentunit",
        [
            Q(
                binned(selector(f"job_lower_le:{METRICS[statistic]}:share5m")),
                instant=True,
                table=True,
            ),
            Q(
                binned(selector(f"job_lower_le:{METRICS[statistic]}:share1h")),
                instant=True,
                table=True,
            ),
            Q(binned(reference), instant=True, table=True),
        ],
        x_field="bin",
        sort_by="order",
        hide=("Time", "__name__", "job", "histogram", "lower", "le", "pad", "order"),
        rename={"Value #A": "live (5m)", "Value #B": "live (1h)", "Value #C": "reference"},
        colors={"reference": REFERENCE_COLOR},
        span=12,
    )


def _distribution_row(p: Panels, th: Thresholds) -> PanelList:
    return [
        _distribution(
            p,
            "confidence",
            "Confidence distribution against the reference",
            "Share of predictions whose top-label probability (sentiment_prediction_confidence) "
            "falls in each bin.",
            "Live bars shifting to the low bins: more texts the model finds ambiguous (new "
            "topics, another language, sarcasm); to the top bin: more easy or repeated texts. "
            "The chi-square below says whether the shift is beyond chance.",
            CONFIDENCE_ALERTS,
        ),
        _distribution(
            p,
            "input_tokens",
            "Input-length distribution against the reference",
            "Share of texts whose length in model tokens (sentiment_input_tokens) falls in "
            "each bin.",
            "Live bars shifting right: longer texts than the model was profiled on (reviews "
            "instead of tweets; truncation past the model's limit); left: fragments or "
            "empty-ish input, often a client bug.",
            TOKENS_ALERTS,
        ),
        _chi_square(p, th, "confidence", ("critical",), CONFIDENCE_ALERTS),
        _chi_square(p, th, "input_tokens", ("critical",), TOKENS_ALERTS),
    ]


def _text_row(p: Panels, th: Thresholds) -> PanelList:
    gate = f"{th.drift_n_min:g}"
    both = (
        f"SentimentTextDrift fires when either test rejects, with N >= {gate} texts, for 2 "
        f"minutes: together they reject at {_alpha('critical')} (the chi-square at half that "
        "level, |z| at a quarter on each side)."
    )
    return [
        p.stat(
            "Text chi-square (5m)",
            Doc(
                "The texts of the last 5 minutes, all replicas, in the model's sentence "
                "embedding (the vector its classifier head reads), projected on the "
                "reference's k principal components, whitened so that reference texts score "
                "mean 0 and variance 1 on each: chi-square = sum over components of the live "
                "mean^2 / (1/N + 1/n_ref), k degrees of freedom. Beside it the critical value "
                f"the alert compares it with. {TEXT_SILENCED}",
                f"Above the critical value: the texts' content moved along the directions the "
                f"reference texts vary most (a new topic, vocabulary, register). {both}",
                TEXT_ALERTS,
            ),
            "none",
            [
                Q(measured(stat_series("text", "chi2_5m")), "chi-square"),
                Q(critical("text"), "critical"),
            ],
            decimals=1,
            nan_text=NOT_MEASURED,
            graph=False,
            span=6,
        ),
        p.stat(
            "Residual z (5m)",
            Doc(
                "The part of each text's embedding outside the reference's k components (the "
                "residual norm): its mean over the last 5 minutes, all replicas, against its "
                "mean on the reference texts, as z = (live - reference) / (reference sd x "
                "sqrt(1/N + 1/n_ref)). Beside it the critical |z| the alert compares it with. "
                f"{TEXT_SILENCED}",
                "Beyond the critical value either way: above, texts unlike anything in the "
                "reference (another language, code, markup, a new domain); below, texts more "
                f"alike than the reference's (templates, a bot, repeats). {both}",
                TEXT_ALERTS,
            ),
            "none",
            [
                Q(measured(selector(f"{RESIDUAL_Z}:z5m")), "z"),
                Q(critical("text_residual"), "critical |z|"),
            ],
            decimals=2,
            nan_text=NOT_MEASURED,
            graph=False,
            span=6,
        ),
        p.stat(
            "Texts tested (5m)",
            Doc(
                "N: texts over the last 5 minutes, all replicas, whose sentence embedding was "
                "scored against the reference (increase() extrapolates to the window's edges, "
                f"so up to ~5% high). {TEXT_SILENCED}",
                f"Under {gate}: the text-drift alert does not judge; the statistics are still "
                "drawn, and are noisy.",
                TEXT_ALERTS,
            ),
            "short",
            [Q(measured(stat_series("text", "n5m")))],
            thresholds=steps("orange", (th.drift_n_min, "green")),
            decimals=0,
            nan_text=NOT_MEASURED,
            span=6,
        ),
        p.stat(
            "Text reference",
            Doc(
                "The reference's text basis: k, the principal components tested (the "
                "chi-square's degrees of freedom), and n_ref, the reference texts it was "
                "scaled on (their mean is an estimate too, hence the 1/n_ref in both tests). "
                "Which texts and which embedding arithmetic: GET /info, drift.text. "
                f"{TEXT_SILENCED}",
                f'"{NOT_MEASURED}" on a model that should have text drift: the profile lacks a '
                "basis for the serving backend or int8 recipe; rebuild it where the model "
                "serves (see the runbook).",
                TEXT_ALERTS,
            ),
            "none",
            [
                Q(measured(stat_series("text", "df")), "components"),
                Q(measured(selector("job:sentiment_reference_text_n:max")), "reference texts"),
            ],
            decimals=0,
            nan_text=NOT_MEASURED,
            graph=False,
            span=6,
        ),
        p.timeseries(
            "Text chi-square against its critical value",
            Doc(
                "Chi-square of the texts' sentence embedding against the reference over a "
                "sliding 5 minutes and hour, all replicas, with the critical value (dashed, "
                f"{_alpha('critical')} for both tests together) and N, the texts tested in "
                f"5 minutes, on the right axis. {TEXT_SILENCED}",
                "The 5-minute line above the dashed one: the alert's chi-square condition. The "
                "hour's line is steadier and sees smaller, lasting shifts; it crosses first "
                "when the texts drift slowly. Chi-square scales with N.",
                TEXT_ALERTS,
            ),
            "none",
            [
                Q(stat_series("text", "chi2_5m"), "chi-square (5m)"),
                Q(stat_series("text", "chi2_1h"), "chi-square (1h)"),
                Q(critical("text"), f"critical ({_alpha('critical')})"),
                Q(stat_series("text", "n5m"), "N (5m)"),
            ],
            dashed=["^critical "],
            right_axis={"^N ": "short"},
            min_value=0,
            span=12,
        ),
        p.timeseries(
            "Residual z against its critical values",
            Doc(
                "z of the mean residual norm (the embedding outside the reference's "
                "components) against the reference's, over a sliding 5 minutes and hour, all "
                "replicas, with the critical values either side (dashed). Positive: texts "
                f"further from anything in the reference. {TEXT_SILENCED}",
                "The 5-minute line beyond a dashed one: the alert's residual condition. Up: "
                "another language, domain or format; down: repetitive texts (a bot, a "
                "template). z grows with sqrt(N) for the same shift.",
                TEXT_ALERTS,
            ),
            "none",
            [
                Q(selector(f"{RESIDUAL_Z}:z5m"), "z (5m)"),
                Q(selector(f"{RESIDUAL_Z}:z1h"), "z (1h)"),
                Q(critical("text_residual"), "critical (upper)"),
                Q(f"-{critical('text_residual')}", "critical (lower)"),
            ],
            dashed=["^critical "],
            span=12,
        ),
        p.timeseries(
            "Text embedding: mean of each component (5m)",
            Doc(
                "Mean over the last 5 minutes, all replicas, of each whitened principal "
                "component of the texts' sentence embedding (00 the reference texts' main "
                "direction of variation, then in decreasing order), in reference standard "
                "deviations: 0 is the reference's mean, and chance alone keeps a component "
                "within about 4 x sqrt(1/N + 1/n_ref) of it (0.23 at N = 500, n_ref = 840). "
                f"{TEXT_SILENCED}",
                "One or a few components far from 0 while the others stay: the texts shifted "
                "along those directions, the chi-square's main contributors. Compare the time "
                "it started with the label-mix and input-length panels, then read sample "
                "texts from that time (see the runbook).",
                TEXT_ALERTS,
            ),
            "none",
            [Q(selector("job_component:sentiment_text_drift:mean5m"), "{{component}}")],
            span=24,
        ),
    ]


def _tests_row(p: Panels) -> PanelList:
    return [
        p.timeseries(
            "Drift p-values (5m)",
            Doc(
                "p-value of each drift test over a sliding 5 minutes, log scale: the "
                "probability of a chi-square this large if the traffic followed the reference. "
                f"Dashed lines: {sci(ALPHAS['critical'])} (every drift alert) and "
                f"{sci(ALPHAS['info'])} (the label mix's info alert); the text-embedding "
                "alert splits its level between its two tests, so its chi-square alerts at "
                f"{sci(ALPHAS['critical'] / 2)}. A p-value that underflows to 0 (an "
                f"overwhelming shift) falls off the log axis. {SILENCED}",
                "A line under a dashed one with enough predictions (see Predictions tested) for "
                "2 minutes: that alert fires. Lines that hover just above: a borderline shift, "
                "worth a look at the distributions.",
                ALL_ALERTS,
            ),
            "sci",
            [Q(stat_series(s, "pvalue5m"), name) for s, name in NAMES.items()],
            thresholds=p_value_steps(),
            log_scale=True,
            span=12,
        ),
        p.timeseries(
            "PSI (display only)",
            Doc(
                "Population stability index of each distribution against the reference, "
                "sum of (live - reference) x ln(live / reference) over its bins with shares "
                "floored at 0.0001, over 5 minutes (and an hour for the label mix). Display "
                "only, for comparison with other tools: no alert uses it, because it ignores "
                f"N. {SILENCED}",
                "Nothing on its own: the usual 0.1 / 0.25 rules of thumb miss real shifts (on "
                "the bundled model's reference mix, a 10-point move of the most frequent label "
                "is a PSI of about 0.04) and flag "
                "noise at low N. Judge drift by the chi-square tests.",
            ),
            "none",
            [
                Q(stat_series("label_mix", "psi5m"), "label mix (5m)"),
                Q(stat_series("label_mix", "psi1h"), "label mix (1h)"),
                Q(stat_series("confidence", "psi5m"), "confidence (5m)"),
                Q(stat_series("input_tokens", "psi5m"), "input length (5m)"),
            ],
            min_value=0,
            span=12,
        ),
    ]
