"""The welcome message, with links to what else the service offers."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

router = APIRouter(tags=["root"])


class WelcomeOut(BaseModel):
    message: str
    links: dict[str, str]


@router.get("/", response_model=WelcomeOut)
async def welcome() -> WelcomeOut:
    return WelcomeOut(
        message="Welcome to the sentimon sentiment analysis API",
        links={
            "ui": "/ui/",
            "docs": "/docs",
            "predict": "/predict",
            "analyze": "/analyze-sentiment/",
            "info": "/info",
            "metrics": "/metrics",
            "health": "/healthz",
            "ready": "/readyz",
        },
    )
