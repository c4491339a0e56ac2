"""Availability: scrape targets up, the API's SLO and error budget, the alerting pipeline."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as model

from dashboards.alerts import Thresholds
from dashboards.common import (
    ALERTMANAGER_JOB,
    AVAILABILITY_UID,
    PROMETHEUS_JOB,
    Doc,
    Row,
    assemble,
    job_variable,
    steps,
)
from dashboards.panels import UP_DOWN, Panels, Q
from dashboards.promql import or_zero, rate

TITLE = "sentimon / Availability"
PROM = f'job="{PROMETHEUS_JOB}"'
AM = f'job="{ALERTMANAGER_JOB}"'
OK_FAILED = {"0": ("FAILED", "red"), "1": ("OK", "green")}


def build(th: Thresholds) -> model.Dashboard:
    p = Panels(th)
    slo = steps("red", (th.slo, "green"))
    slo_text = f"{th.slo:.0%} of requests without a 5xx over 30 days"
    requests_in = "http_requests_total"

    def availability_over(window: str) -> str:
        errors = or_zero(rate(requests_in, 'status=~"5.."', window=window, func="increase"))
        return f"1 - (({errors}) / {rate(requests_in, window=window, func='increase')})"

    targets_row = [
        p.state_timeline(
            "Targets up",
            Doc(
                "Whether Prometheus could scrape each target (API, node-exporter, "
                "Alertmanager, Prometheus itself) over time.",
                "Red stretches: the target was down or unreachable.",
                ("SentimentApiDown", "TargetDown"),
            ),
            "none",
            [Q("up", "{{job}} {{instance}}")],
            thresholds=steps("red", (1, "green")),
            mappings=UP_DOWN,
            span=16,
        ),
        p.stat(
            "Targets up by job",
            Doc(
                "Lowest up value per scrape job right now.",
                "DOWN on sentimon pages after 2 minutes; any other job warns after 5.",
                ("SentimentApiDown", "TargetDown"),
            ),
            "none",
            [Q("min by (job) (up)", "{{job}}")],
            thresholds=steps("red", (1, "green")),
            mappings=UP_DOWN,
            graph=False,
            span=8,
            height=8,
        ),
    ]
    slo_row = [
        p.stat(
            "Availability",
            Doc(
                f"Share of API requests without a 5xx over several windows (SLO: {slo_text}).",
                f"Below {th.slo:.0%}: the error budget is being spent faster than allowed.",
                ("SentimentErrorBudgetBurn", "SentimentHighErrorRate"),
            ),
            "percentunit",
            [
                Q(f'1 - job:http_requests_5xx:ratio_rate{window}{{job="$job"}}', window)
                for window in ("5m", "1h", "1d", "3d")
            ],
            thresholds=slo,
            decimals=3,
            span=12,
        ),
        p.stat(
            "Availability over the time range",
            Doc(
                "Share of API requests without a 5xx over the dashboard's time range.",
                f"Below the {th.slo:.0%} SLO.",
                ("SentimentErrorBudgetBurn",),
            ),
            "percentunit",
            [Q(availability_over("$__range"), instant=True)],
            thresholds=slo,
            graph=False,
            decimals=3,
            span=6,
        ),
        p.stat(
            "Error budget left (30 days)",
            Doc(
                f"Share of the 30-day error budget ({th.error_budget:.0%} of requests may "
                "fail with a 5xx) not yet spent, from the data Prometheus holds.",
                "Near 0 or negative: the SLO is broken for this period; freeze risky changes.",
                ("SentimentErrorBudgetBurn",),
            ),
            "percentunit",
            [Q(f"1 - (1 - ({availability_over('30d')})) / {th.error_budget:g}", instant=True)],
            thresholds=steps("red", (0, "green")),
            graph=False,
            decimals=1,
            span=6,
        ),
        p.timeseries(
            "Availability over time",
            Doc(
                "Share of requests without a 5xx over 5-minute and 1-hour windows, with the "
                "SLO line.",
                f"Dips below {th.slo:.0%}; a long dip in the 1-hour line burns the budget.",
                ("SentimentErrorBudgetBurn", "SentimentHighErrorRate"),
            ),
            "percentunit",
            [
                Q(f'1 - job:http_requests_5xx:ratio_rate{window}{{job="$job"}}', window)
                for window in ("5m", "1h")
            ],
            thresholds=slo,
            max_value=1,
        ),
        p.timeseries(
            "Error budget burn rate",
            Doc(
                "How fast the 5xx ratio spends the 30-day budget (1 = exactly in 30 days), "
                "over each long window of the burn-rate alerts; lines at their factors.",
                "Above "
                + ", ".join(f"{factor:g}x over {w}" for w, factor in th.burn_rates.items())
                + " (with the short window confirming) fires SentimentErrorBudgetBurn.",
                ("SentimentErrorBudgetBurn",),
            ),
            "none",
            [
                Q(
                    f'job:http_requests_5xx:ratio_rate{window}{{job="$job"}} / {th.error_budget:g}',
                    f"{window} (alert above {factor:g}x)",
                )
                for window, factor in th.burn_rates.items()
            ],
            thresholds=steps(
                "green",
                *[
                    (factor, color)
                    for factor, color in zip(
                        sorted(th.burn_rates.values()),
                        ("yellow", "orange", "red", "dark-red"),
                        strict=False,
                    )
                ],
            ),
            min_value=0,
        ),
    ]
    alerting_row = [
        p.table(
            "Firing alerts",
            Doc(
                "Alerts firing now in Prometheus, with their labels (the Watchdog always "
                "fires: it proves the pipeline works).",
                "Anything but the Watchdog: follow the alert's runbook.",
                ("Watchdog",),
            ),
            "none",
            [Q('ALERTS{alertstate="firing"}', instant=True, table=True)],
            hide=("Time", "Value", "__name__", "alertstate"),
            span=16,
        ),
        p.stat(
            "Watchdog",
            Doc(
                "Whether the always-firing Watchdog alert fires in Prometheus and Alertmanager "
                "holds active alerts.",
                "BROKEN: rule evaluation or the Prometheus-to-Alertmanager link is broken; "
                "no alert will reach anyone.",
                ("Watchdog",),
            ),
            "none",
            [
                Q(
                    or_zero(
                        '(max(ALERTS{alertname="Watchdog", alertstate="firing"})'
                        f' and on() (sum(alertmanager_alerts{{{AM}, state="active"}}) > 0))'
                    ),
                    "pipeline",
                )
            ],
            thresholds=steps("red", (1, "green")),
            mappings={"0": ("BROKEN", "red"), "1": ("WORKS", "green")},
            graph=False,
            span=8,
        ),
        p.timeseries(
            "Alertmanager alerts",
            Doc(
                "Alerts Alertmanager holds, by state (active, suppressed by silences or "
                "inhibition).",
                "0 active: not even the Watchdog arrives; Prometheus cannot reach Alertmanager.",
                ("Watchdog", "TargetDown"),
            ),
            "short",
            [Q(f"sum by (state) (alertmanager_alerts{{{AM}}})", "{{state}}")],
            span=8,
        ),
        p.timeseries(
            "Notifications",
            Doc(
                "Notifications Alertmanager sent and failed to send per second, by "
                "integration (webhook, email, slack, ...).",
                "Any failed series above 0: receivers do not get alerts.",
                ("Watchdog",),
            ),
            "ops",
            [
                Q(
                    rate("alertmanager_notifications_total", job=AM, by=("integration",)),
                    "{{integration}} sent",
                ),
                Q(
                    rate("alertmanager_notifications_failed_total", job=AM, by=("integration",)),
                    "{{integration}} failed",
                ),
            ],
            span=8,
        ),
        p.timeseries(
            "Prometheus alerting health",
            Doc(
                "Alertmanagers Prometheus discovered, notifications it failed to send or "
                "dropped, and rule evaluation failures, per second.",
                "0 Alertmanagers discovered; errors, drops or rule failures above 0.",
                ("Watchdog", "TargetDown"),
            ),
            "short",
            [
                Q(
                    f"sum(prometheus_notifications_alertmanagers_discovered{{{PROM}}})",
                    "Alertmanagers discovered",
                ),
                Q(
                    or_zero(rate("prometheus_notifications_errors_total", job=PROM)),
                    "notification errors/s",
                ),
                Q(
                    or_zero(rate("prometheus_notifications_dropped_total", job=PROM)),
                    "notifications dropped/s",
                ),
                Q(
                    or_zero(rate("prometheus_rule_evaluation_failures_total", job=PROM)),
                    "rule evaluation failures/s",
                ),
            ],
            span=8,
        ),
        p.stat(
            "Config reloads",
            Doc(
                "Whether Prometheus and Alertmanager loaded their last configuration.",
                "FAILED: a config change was rejected; the old config still runs.",
                ("TargetDown",),
            ),
            "none",
            [
                Q(
                    f"min(prometheus_config_last_reload_successful{{{PROM}}})",
                    "Prometheus",
                ),
                Q(
                    f"min(alertmanager_config_last_reload_successful{{{AM}}})",
                    "Alertmanager",
                ),
            ],
            thresholds=steps("red", (1, "green")),
            mappings=OK_FAILED,
            graph=False,
            span=12,
        ),
        p.timeseries(
            "Scrape duration",
            Doc(
                "How long each scrape took, per target.",
                "Close to the scrape timeout (10s): the target is overloaded, scrapes fail.",
                ("SentimentApiDown", "TargetDown"),
            ),
            "s",
            [Q("scrape_duration_seconds", "{{job}} {{instance}}")],
            span=12,
        ),
    ]
    return assemble(
        AVAILABILITY_UID,
        TITLE,
        f"Targets up, the API's availability against its SLO ({slo_text}) and error "
        "budget, and whether alerts can reach anyone.",
        [
            Row("Targets", targets_row),
            Row("API availability and error budget", slo_row),
            Row("Alerting pipeline", alerting_row),
        ],
        variables=[job_variable()],
        tags=["availability"],
    )
