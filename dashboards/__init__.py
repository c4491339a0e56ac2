"""sentimon's Grafana dashboards as code (grafana-foundation-sdk, Grafana 11.6 schema).

`python -m dashboards` writes deploy/grafana/dashboards/<uid>.json; `--check` exits 1 when a
committed file differs from the generator's output. Panel thresholds come from the alert rules
(deploy/prometheus/rules/alerts.yaml). `dashboards.queries` lists every panel query with
Grafana's variables substituted, for tests against a live Prometheus or Loki.
"""
