"""Drift & feedback: is the model still seeing the traffic it was built for, and is it still
right? Drift of the label mix, confidence, input length and the texts' sentence embedding
against the model's reference profile (the rows of `dashboards.drift`); the label-free
accuracy estimate (CBPE, with the BBSE cross-check) beside the reference accuracy and the
feedback agreement; how often user feedback agrees with the model, per class; and the health
of the prediction log and feedback store feedback depends on.

Every statistic comes from the `sentimon.rules.drift` and `sentimon.rules.feedback` recording
rules, which sum counters over the fleet before dividing. Feedback is sparse and biased, so
agreement is always shown with its n and Wilson interval; with no feedback in a window the
statistics are NaN ("no feedback"), not 0. Drift and the estimate are absent without a
reference profile ("not measured"), never 0.
"""

from __future__ import annotations

from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from dashboards import drift
from dashboards.alerts import Thresholds
from dashboards.common import (
    FEEDBACK_UID,
    MODEL_UID,
    STAT_HEIGHT,
    Doc,
    Row,
    Steps,
    assemble,
    drilldown,
    job_variable,
    steps,
)
from dashboards.panels import UP_DOWN, Panels, Q
from dashboards.promql import or_nan, quantile, rate, selector

TITLE = "sentimon / Drift & feedback"
NO_FEEDBACK = "no feedback"
ROWS_PER_S = "suffix: rows/s"
WINDOWS = {"1h": "last hour", "1d": "last day"}
LOW_ACCURACY = ("SentimentLowFeedbackAccuracy",)
ACCURACY_DROP = ("SentimentEstimatedAccuracyDrop",)
STORE_ALERTS = ("SentimentFeedbackStoreDown", "SentimentStoreDroppingWrites")
PanelList = list[Builder[model.Panel]]


def _n(window: str) -> str:
    return f'job:sentiment_feedback:increase{window}{{job="$job"}}'


def _agreement(stat: str, window: str) -> str:
    """A job-level feedback statistic, NaN when the window holds no feedback."""
    return or_nan(f'job:sentiment_feedback_{stat}{window}{{job="$job"}}', _n(window))


def _per_class(stat: str, window: str) -> str:
    """A per-class statistic, NaN for each class without feedback in the window."""
    like = f'job_sentiment:sentiment_feedback_predicted:increase{window}{{job="$job"}}'
    return or_nan(f'job_sentiment:sentiment_feedback_{stat}{window}{{job="$job"}}', like)


def build(th: Thresholds) -> model.Dashboard:
    p = Panels(th)
    target = f"{th.accuracy_target:.0%}"
    agreement_steps = steps("orange", (th.accuracy_target, "green"))
    enough = steps("orange", (th.feedback_min, "green"))
    return assemble(
        FEEDBACK_UID,
        TITLE,
        "Drift of the label mix, confidence, input length and the texts' sentence embedding "
        "against the model's reference profile; the label-free accuracy estimate beside the "
        "reference accuracy and the feedback agreement; feedback agreement with its n and "
        "Wilson interval, per-class precision, recall and F1; and the prediction log and "
        "feedback store.",
        [
            *drift.rows(p, th),
            Row("Label-free accuracy", _estimate_row(p, th)),
            Row("Feedback agreement", _agreement_row(p, th, target, agreement_steps, enough)),
            Row("Per class", _class_row(p)),
            Row("Feedback traffic", _traffic_row(p, th)),
            Row("Prediction log and feedback store", _store_row(p)),
        ],
        variables=[job_variable()],
        tags=["model", "feedback"],
    )


def _estimate_row(p: Panels, th: Thresholds) -> PanelList:
    margin = f"{th.accuracy_drop_margin:g}"
    gate = f"{th.accuracy_drop_n_min:g}"
    estimate = selector("job:sentiment_estimated_accuracy:ratio1h")
    reference = selector("job:sentiment_reference_accuracy:max")
    bbse = selector("job:sentiment_bbse_accuracy:ratio1h")
    n = selector("job:sentiment_label_mix:n1h")
    estimated_f1 = selector("job_sentiment:sentiment_estimated_f1:ratio1h")
    cbpe = (
        "the mean calibrated top-label probability of the predictions (CBPE; the calibration "
        "is fitted on the reference profile's validation texts)"
    )
    absent = (
        f'Absent ("{drift.NOT_MEASURED}") without a reference profile (GET /info says why) '
        "or with no predictions in the hour."
    )
    return [
        p.stat(
            "Estimated accuracy (1h)",
            Doc(
                f"Accuracy on the last hour's traffic, all replicas, estimated without labels: "
                f"{cbpe}. Sound while texts keep meaning what they meant (covariate shift); "
                f"under label shift about a point high (see BBSE). {absent}",
                f"More than {margin} below the reference accuracy with at least {gate} "
                "predictions in the hour, for 30 minutes: the alert fires. It cannot see "
                "concept drift (the same text now meaning another label): the feedback can.",
                ACCURACY_DROP,
            ),
            "percentunit",
            [Q(drift.measured(estimate))],
            decimals=1,
            nan_text=drift.NOT_MEASURED,
            span=5,
        ),
        p.stat(
            "Reference accuracy",
            Doc(
                "Accuracy of the model on the reference profile's labelled texts: the "
                "baseline the estimate is compared with. Absent (not measured) when the "
                "profile was built from texts without labels, or two model revisions serve.",
                f"The estimate more than {margin} below it: SentimentEstimatedAccuracyDrop.",
                ACCURACY_DROP,
            ),
            "percentunit",
            [Q(drift.measured(reference))],
            decimals=1,
            nan_text=drift.NOT_MEASURED,
            graph=False,
            span=5,
        ),
        p.stat(
            "BBSE accuracy (1h)",
            Doc(
                "Cross-check of the estimate under label shift (black-box shift estimation): "
                "the reference confusion matrix, inverted, applied to the last hour's predicted "
                "label shares. Needs a labelled profile in which every label was predicted; "
                f"like the drift statistics it is absent while two model revisions serve. {absent}",
                "Far from the CBPE estimate: the shift is not a pure label shift (new kinds of "
                "text), so neither estimate is safe; trust the feedback.",
                ACCURACY_DROP,
            ),
            "percentunit",
            [Q(drift.measured(bbse))],
            decimals=1,
            nan_text=drift.NOT_MEASURED,
            span=5,
        ),
        p.stat(
            "Estimated macro-F1 (1h)",
            Doc(
                "Mean over labels of the estimated F1 (2 x expected right predictions of the "
                "label / (predicted as it + expected truly it)), last hour, all replicas. "
                f"{absent}",
                "Falling while the estimated accuracy holds: a minority label degrades.",
            ),
            "percentunit",
            [Q(drift.measured(selector("job:sentiment_estimated_f1:macro1h")))],
            decimals=1,
            nan_text=drift.NOT_MEASURED,
            span=5,
        ),
        p.stat(
            "Predictions in the estimate (1h)",
            Doc(
                "Predictions over the last hour, all replicas: the n of the estimates (their "
                "noise is about 0.15 / sqrt(n)).",
                f"Under {gate}: the accuracy-drop alert does not judge.",
                ACCURACY_DROP,
            ),
            "short",
            [Q(n)],
            thresholds=steps("orange", (th.accuracy_drop_n_min, "green")),
            decimals=0,
            span=4,
        ),
        p.timeseries(
            "Estimated accuracy against the reference and feedback",
            Doc(
                f"Label-free estimate, {cbpe}, over a sliding 5 minutes and hour; the "
                f"reference accuracy and the alert line {margin} below it (dashed); the BBSE "
                "cross-check; and the feedback agreement over the last hour with its Wilson "
                "95% band and its n (right axis). The estimate covers every prediction, the "
                "feedback only those users answered.",
                f"The 1h estimate under the alert line (with n >= {gate}): the model is likely "
                "less accurate than on its reference. Feedback well under a steady estimate: "
                "concept drift, which no label-free estimate sees.",
                (*ACCURACY_DROP, *LOW_ACCURACY),
            ),
            "percentunit",
            [
                Q(selector("job:sentiment_estimated_accuracy:ratio5m"), "estimated (5m)"),
                Q(estimate, "estimated (1h)"),
                Q(reference, "reference"),
                Q(f"{reference} - {margin}", f"alert line (reference - {margin})"),
                Q(bbse, "BBSE (1h)"),
                Q(_agreement("agreement:ratio", "1h"), "feedback agreement (1h)"),
                Q(_agreement("agreement:wilson95_upper", "1h"), "feedback 95% upper"),
                Q(_agreement("agreement:wilson95_lower", "1h"), "feedback 95% lower"),
                Q(_n("1h"), "feedback n (1h)"),
            ],
            band=("feedback 95% upper", "feedback 95% lower"),
            dashed=["^reference$", "^alert line"],
            right_axis={"^feedback n": "short"},
            span=24,
        ),
        p.timeseries(
            "F1 by class: estimated and feedback over time (1h)",
            Doc(
                "Per-class F1 over a sliding hour: estimated without labels (solid) and from "
                "feedback (dashed, same colour; gaps where a class had no feedback).",
                "One class's estimate falling while the others hold: that class degrades. "
                "Feedback F1 well under the estimate: the estimate is too kind there.",
                (*ACCURACY_DROP, *LOW_ACCURACY),
            ),
            "percentunit",
            [
                Q(estimated_f1, "{{sentiment}} estimated"),
                Q(_per_class("f1:ratio", "1h"), "{{sentiment}} feedback"),
            ],
            dashed=[" feedback$"],
            colors=drift.SENTIMENT_COLORS,
            min_value=0,
            max_value=1,
            span=12,
        ),
        p.table(
            "F1 by class: estimated and feedback (1h)",
            Doc(
                "Per class over the last hour: estimated F1 (label-free), F1 from feedback, "
                "and the feedbacks behind it (predicted as the class).",
                "A class with a low estimate and little feedback: ask for feedback on it.",
                (*ACCURACY_DROP, *LOW_ACCURACY),
            ),
            "percentunit",
            [
                Q(f"{estimated_f1} + 0", instant=True, table=True),
                Q(_per_class("f1:ratio", "1h"), instant=True, table=True),
                Q(
                    'job_sentiment:sentiment_feedback_predicted:increase1h{job="$job"} + 0',
                    instant=True,
                    table=True,
                ),
            ],
            hide=("Time", "job", "__name__"),
            rename={
                "Value #A": "estimated F1",
                "Value #B": "feedback F1",
                "Value #C": "feedback n",
            },
            merge=True,
            decimals=3,
            nan_text=NO_FEEDBACK,
            units={"feedback n": "short"},
            span=12,
        ),
    ]


def _agreement_row(
    p: Panels, th: Thresholds, target: str, agreement_steps: Steps, enough: Steps
) -> PanelList:
    panels: PanelList = []
    for window, words in WINDOWS.items():
        panels += [
            p.stat(
                f"Agreement ({window})",
                Doc(
                    f"Share of the feedback recorded over the {words} that says the prediction "
                    'was right (actual = predicted; a bare "wrong" counts as wrong), all '
                    "replicas. Feedback is sparse and biased toward surprising answers: read "
                    "it with its n and interval beside it, not as accuracy on all traffic.",
                    f"Below the {target} target. Only the interval says whether that is "
                    f"evidence: the alert needs the day's one-sided 99% upper bound under "
                    f"{target} with at least {th.feedback_min:g} feedbacks.",
                    LOW_ACCURACY,
                ),
                "percentunit",
                [Q(_agreement("agreement:ratio", window))],
                thresholds=agreement_steps,
                decimals=1,
                nan_text=NO_FEEDBACK,
                span=4,
            ),
            p.stat(
                f"Feedback n ({window})",
                Doc(
                    f"Feedbacks recorded over the {words}, right or wrong (n of the agreement "
                    "beside it).",
                    f"Under {th.feedback_min:g}: too few to judge the model; 0: nobody sends "
                    "feedback, or it fails (see Feedback requests by outcome).",
                ),
                "short",
                [Q(_n(window))],
                thresholds=enough,
                decimals=0,
                span=3,
            ),
            p.stat(
                f"Wilson 95% interval ({window})",
                Doc(
                    "Wilson score interval of the agreement (z = 1.96): the true agreement of "
                    "the feedback population lies in it with 95% confidence. Half-width at "
                    "0.85: n = 100 0.070, n = 400 0.035, n = 1000 0.022.",
                    f"The whole interval below {target}: the model misses the target.",
                    LOW_ACCURACY,
                ),
                "percentunit",
                [
                    Q(_agreement("agreement:wilson95_lower", window), "lower"),
                    Q(_agreement("agreement:wilson95_upper", window), "upper"),
                ],
                decimals=1,
                nan_text=NO_FEEDBACK,
                graph=False,
                span=5,
            ),
        ]
    for window, words in WINDOWS.items():
        queries = [
            Q(_agreement("agreement:ratio", window), "agreement"),
            Q(_agreement("agreement:wilson95_upper", window), "95% upper"),
            Q(_agreement("agreement:wilson95_lower", window), "95% lower"),
        ]
        alert_line = ""
        if window == "1d":
            queries.append(Q(_agreement("agreement:wilson99_upper", window), "99% upper (alert)"))
            alert_line = " and the one-sided 99% upper bound the alert compares with the target"
        panels.append(
            p.timeseries(
                f"Agreement and 95% band over time ({window})",
                Doc(
                    f"Feedback agreement over a sliding {words} with its Wilson 95% band"
                    f"{alert_line}; the dashed line is the {target} target.",
                    f"The band entirely under the {target} line; a band that widens: less "
                    "feedback.",
                    LOW_ACCURACY,
                ),
                "percentunit",
                queries,
                thresholds=agreement_steps,
                band=("95% upper", "95% lower"),
                max_value=1,
                span=12,
            )
        )
    return panels


def _class_row(p: Panels) -> PanelList:
    return [
        p.matrix(
            "Confusion matrix",
            Doc(
                "Feedback over the dashboard's time range: a row per predicted label, a column "
                'per actual label (unknown: the user said only "wrong"). The diagonal is '
                "where the feedback agrees.",
                "Large cells off the diagonal: the classes the model confuses, e.g. neutral "
                "predicted for negative text.",
                LOW_ACCURACY,
            ),
            "short",
            Q(
                rate(
                    "sentiment_feedback_total",
                    by=("predicted", "actual"),
                    window="$__range",
                    func="increase",
                ),
                instant=True,
                table=True,
            ),
            rows="predicted",
            columns="actual",
            span=10,
        ),
        p.table(
            "Precision, recall and F1 by class (1d)",
            Doc(
                "Per class over the last day: precision = agreeing / predicted as the class, "
                'recall = agreeing / actually the class (a bare "wrong" has no actual class), '
                "F1 = 2 agreeing / (predicted + actual), and the feedback counts behind them.",
                "One class far below the others: the model fails on that class. A class with no "
                "feedback shows no feedback.",
                LOW_ACCURACY,
            ),
            "percentunit",
            [
                Q(_per_class("precision:ratio", "1d"), instant=True, table=True),
                Q(_per_class("recall:ratio", "1d"), instant=True, table=True),
                Q(_per_class("f1:ratio", "1d"), instant=True, table=True),
                Q(
                    'job_sentiment:sentiment_feedback_predicted:increase1d{job="$job"}',
                    instant=True,
                    table=True,
                ),
                Q(
                    'job_sentiment:sentiment_feedback_actual:increase1d{job="$job"}',
                    instant=True,
                    table=True,
                ),
            ],
            hide=("Time", "job", "__name__"),
            rename={
                "Value #A": "precision",
                "Value #B": "recall",
                "Value #C": "F1",
                "Value #D": "predicted (n)",
                "Value #E": "actual (n)",
            },
            merge=True,
            decimals=3,
            nan_text=NO_FEEDBACK,
            units={"predicted (n)": "short", "actual (n)": "short"},
            span=14,
        ),
        p.timeseries(
            "F1 by class (1d)",
            Doc(
                "F1 per class over a sliding day, and their mean (macro-F1, over the classes "
                "that have feedback).",
                "A class's F1 falling while the others hold: that class degrades first.",
                LOW_ACCURACY,
            ),
            "percentunit",
            [
                Q(_per_class("f1:ratio", "1d"), "{{sentiment}}"),
                Q(_agreement("f1:macro", "1d"), "macro-F1"),
            ],
            max_value=1,
            span=12,
        ),
        p.timeseries(
            "Macro-F1",
            Doc(
                "Mean F1 over the classes with feedback, over a sliding hour and day. Unlike "
                "agreement it weighs every class the same, so a rare class that fails shows.",
                "Falling while agreement holds: a minority class is failing.",
                LOW_ACCURACY,
            ),
            "percentunit",
            [Q(_agreement("f1:macro", w), f"macro-F1 {w}") for w in WINDOWS],
            max_value=1,
            span=12,
        ),
    ]


def _traffic_row(p: Panels, th: Thresholds) -> PanelList:
    return [
        p.timeseries(
            "Feedback count",
            Doc(
                "Feedbacks recorded over a sliding hour and day, all replicas (the n of the "
                "agreement).",
                f"The day under {th.feedback_min:g}: the agreement alert cannot judge; a drop "
                "to 0: the client stopped sending feedback, or it fails.",
            ),
            "short",
            [Q(_n(w), f"last {w}") for w in WINDOWS],
            thresholds=steps("orange", (th.feedback_min, "green")),
            span=8,
        ),
        p.timeseries(
            "Feedback requests by outcome",
            Doc(
                "POST /feedback over the last hour by outcome: created, duplicate (a retry), "
                "conflict (different feedback for the same id), unknown_request_id, "
                "prediction_expired, invalid, store_unavailable (the database could not "
                "commit).",
                "store_unavailable: the database is down; many unknown_request_id: the client "
                "sends the wrong ids, or prediction rows were dropped.",
                ("SentimentFeedbackStoreDown",),
            ),
            "short",
            [
                Q(
                    'job_outcome:sentiment_feedback_requests:increase1h{job="$job"}',
                    "{{outcome}}",
                )
            ],
            stack=common.StackingMode.NORMAL,
            span=8,
        ),
        p.timeseries(
            "Feedback delay",
            Doc(
                "Time from a prediction to its first feedback, median and 90th percentile over "
                "a sliding day (buckets from 10 s to 7 days).",
                "Growing: the labels arrive late, so the agreement describes an older model; "
                "beyond the retention feedback is refused (410).",
            ),
            "s",
            [
                Q('job:sentiment_feedback_delay_seconds:p50_rate1d{job="$job"}', "p50"),
                Q('job:sentiment_feedback_delay_seconds:p90_rate1d{job="$job"}', "p90"),
            ],
            span=8,
            links=[drilldown("Model", MODEL_UID)],
        ),
    ]


def _store_row(p: Panels) -> PanelList:
    return [
        p.stat(
            "Store up",
            Doc(
                "Whether the prediction log's database answered its last operation, lowest "
                "over instances (sentiment_store_up). Also 0 for a moment at start, and "
                "always with SENTIMON_STORE=false (no store).",
                "DOWN while predictions arrive: their rows queue, then are lost; feedback "
                "answers 503.",
                STORE_ALERTS,
            ),
            "none",
            [Q('min(sentiment_store_up{job="$job"})')],
            thresholds=steps("red", (1, "green")),
            mappings=UP_DOWN,
            graph=False,
            span=4,
            height=STAT_HEIGHT,
        ),
        p.state_timeline(
            "Store up by instance",
            Doc(
                "sentiment_store_up per instance over time.",
                "Red stretches: that instance could not reach its database.",
                ("SentimentFeedbackStoreDown",),
            ),
            "none",
            [Q('sentiment_store_up{job="$job"}', "{{instance}}")],
            thresholds=steps("red", (1, "green")),
            mappings=UP_DOWN,
            span=20,
            height=STAT_HEIGHT,
        ),
        p.timeseries(
            "Rows written and dropped",
            Doc(
                "Prediction rows committed per second, and rows dropped by reason: queue_full "
                "(the database too slow or down), db_error (refused by the database), "
                "duplicate_id (a client reused an X-Request-ID: the first row stands), "
                "shutdown (still queued when a process stopped).",
                "Any queue_full or db_error: predictions lost from the log, and feedback on "
                "them impossible. duplicate_id is the client's doing.",
                STORE_ALERTS,
            ),
            ROWS_PER_S,
            [
                Q('job:sentiment_store_writes:rate5m{job="$job"}', "written"),
                Q(
                    'job_reason:sentiment_store_dropped:rate5m{job="$job"}',
                    "dropped: {{reason}}",
                ),
            ],
            span=9,
        ),
        p.timeseries(
            "Rows lost",
            Doc(
                "Share of prediction rows lost to a store fault (queue_full and db_error) over "
                "5 minutes, of all rows offered: the alert's series.",
                "Above 0 for 10 minutes: SentimentStoreDroppingWrites.",
                ("SentimentStoreDroppingWrites",),
            ),
            "percentunit",
            [Q('job:sentiment_store_rows_lost:ratio_rate5m{job="$job"}', "lost")],
            min_value=0,
            span=5,
        ),
        p.timeseries(
            "Store queue depth",
            Doc(
                "Prediction rows waiting to be written, all instances.",
                "Growing: the database is slower than the traffic or down; at "
                "SENTIMON_STORE_QUEUE_SIZE rows are dropped (queue_full).",
                STORE_ALERTS,
            ),
            "short",
            [Q('job:sentiment_store_queue_depth:sum{job="$job"}', "queued rows")],
            span=5,
        ),
        p.timeseries(
            "Store write latency",
            Doc(
                "Time to insert and commit one batch of prediction rows: p50, p95.",
                "Seconds: the database is overloaded or its disk is slow; the queue will grow.",
            ),
            "s",
            [
                Q(quantile(0.5, "sentiment_store_write_seconds"), "p50"),
                Q('job:sentiment_store_write_seconds:p95_rate5m{job="$job"}', "p95"),
            ],
            span=5,
        ),
        p.timeseries(
            "Retention deletes",
            Doc(
                "Prediction rows (with their feedback) deleted by retention per second: by age "
                "(SENTIMON_RETENTION_DAYS) or beyond SENTIMON_RETENTION_MAX_ROWS.",
                "Deletes by rows while feedback still arrives for older predictions: the "
                "log is too small for the feedback delay (they get 410).",
            ),
            ROWS_PER_S,
            [Q(rate("sentiment_store_deleted_total", by=("rule",)), "{{rule}}")],
            span=24,
        ),
    ]
