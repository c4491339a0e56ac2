"""All routers, in one place."""

from __future__ import annotations

from fastapi import APIRouter

from sentimon.api.routes import feedback, health, live, metrics, predict, root, ui

api_router = APIRouter()
for module in (root, predict, feedback, health, live, metrics, ui):
    api_router.include_router(module.router)
