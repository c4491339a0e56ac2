"""`sentimon`: serve, up, predict, traffic, webhook, model build, db upgrade, feedback
export/stats."""

from __future__ import annotations

import typer

from sentimon.cli import (
    db_cmd,
    feedback_cmd,
    model_cmd,
    predict_cmd,
    serve_cmd,
    traffic_cmd,
    up_cmd,
    webhook_cmd,
)

app = typer.Typer(
    help="sentimon: sentiment analysis with monitoring built in.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("serve")(serve_cmd.serve)
app.command("up")(up_cmd.up)
app.command("predict")(predict_cmd.predict)
app.command("traffic")(traffic_cmd.traffic)
app.command("webhook")(webhook_cmd.webhook)
app.add_typer(model_cmd.app, name="model")
app.add_typer(db_cmd.app, name="db")
app.add_typer(feedback_cmd.app, name="feedback")
