"""The prediction log and the feedback on it (SQLAlchemy Core; Alembic migrates them)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

# Constraint names fixed, so migrations name the same objects on SQLite and PostgreSQL.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID_LENGTH = 160
"""A request id (128 characters at most) plus `:<item>` for a batch item."""

predictions = Table(
    "predictions",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True, comment="what feedback names"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("request_id", String(128), nullable=False, comment="the HTTP request's id"),
    Column("endpoint", String(32), nullable=False),
    Column("model", String(200), nullable=False),
    Column("revision", String(200), nullable=False),
    Column("label", String(64), nullable=False),
    Column("score", Float, nullable=False),
    Column("probabilities", JSON, nullable=False, comment="every label's probability"),
    Column("tokens", Integer, nullable=False),
    Column("text_sha256", String(64), nullable=False),
    Column("text", Text, nullable=True, comment="only with SENTIMON_STORE_TEXT=true"),
)
Index("ix_predictions_created_at", predictions.c.created_at)

feedback = Table(
    "feedback",
    metadata,
    Column(
        "prediction_id",
        String(ID_LENGTH),
        ForeignKey("predictions.id", ondelete="CASCADE"),
        primary_key=True,
        comment="one feedback per prediction: the first one wins",
    ),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("predicted", String(64), nullable=False, comment="the prediction's label"),
    Column("actual", String(64), nullable=True, comment="null: wrong, right label not given"),
    Column("correct", Boolean, nullable=False),
    Column("source", String(100), nullable=True),
)
