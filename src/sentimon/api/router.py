"""All routers, in one place."""

from __future__ import annotations

from fastapi import APIRouter

from sentimon.api.routes import health, metrics, predict, root

api_router = APIRouter()
for module in (root, predict, health, metrics):
    api_router.include_router(module.router)
