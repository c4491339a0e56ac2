"""The prediction log and the feedback on it.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", sa.String(160), nullable=False, comment="what feedback names"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False, comment="the HTTP request's id"),
        sa.Column("endpoint", sa.String(32), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("revision", sa.String(200), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("probabilities", sa.JSON(), nullable=False, comment="every label's probability"),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("text_sha256", sa.String(64), nullable=False),
        sa.Column("text", sa.Text(), nullable=True, comment="only with SENTIMON_STORE_TEXT=true"),
        sa.PrimaryKeyConstraint("id", name="pk_predictions"),
    )
    op.create_index("ix_predictions_created_at", "predictions", ["created_at"])
    op.create_table(
        "feedback",
        sa.Column(
            "prediction_id",
            sa.String(160),
            nullable=False,
            comment="one feedback per prediction: the first one wins",
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("predicted", sa.String(64), nullable=False, comment="the prediction's label"),
        sa.Column(
            "actual", sa.String(64), nullable=True, comment="null: wrong, right label not given"
        ),
        sa.Column("correct", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(100), nullable=True),
        sa.ForeignKeyConstraint(
            ["prediction_id"],
            ["predictions.id"],
            name="fk_feedback_prediction_id_predictions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("prediction_id", name="pk_feedback"),
    )


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_index("ix_predictions_created_at", table_name="predictions")
    op.drop_table("predictions")
