"""Dependencies shared by the routes.

They are `async def` on purpose: FastAPI runs a plain `def` dependency in its thread pool,
which costs two thread hops per request for work that takes microseconds.
"""

from __future__ import annotations

import email.message

from fastapi import Request

from sentimon.errors import UnsupportedMediaType
from sentimon.service import SentimentService


async def get_service(request: Request) -> SentimentService:
    service: SentimentService = request.app.state.service
    return service


async def require_json(request: Request) -> None:
    """POST bodies must be declared as JSON (`application/json` or `*/*+json`)."""
    declared = request.headers.get("content-type")
    if declared:
        message = email.message.Message()
        message["content-type"] = declared
        subtype = message.get_content_subtype()
        if message.get_content_maintype() == "application" and (
            subtype == "json" or subtype.endswith("+json")
        ):
            return
    raise UnsupportedMediaType(
        f"Content-Type must be application/json, got {declared!r}"
        if declared
        else "Content-Type must be application/json, got none"
    )
