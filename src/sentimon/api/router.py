"""All routers, in one place."""

from __future__ import annotations

from fastapi import APIRouter

from sentimon.api.routes import feedback, health, metrics, predict, root

api_router = APIRouter()
for module in (root, predict, feedback, health, metrics):
    api_router.include_router(module.router)
