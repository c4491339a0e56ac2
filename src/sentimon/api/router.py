"""All routers, in one place."""

from __future__ import annotations

from fastapi import APIRouter

from sentimon.api.routes import feedback, health, live, metrics, predict, root, ui

_MODULES = (root, predict, feedback, health, live, metrics, ui)

api_router = APIRouter()
for module in _MODULES:
    api_router.include_router(module.router)

ROUTE_PATHS = frozenset(
    path
    for module in _MODULES
    for route in module.router.routes
    if "{" not in (path := getattr(route, "path", "{"))
)
"""The API's paths without parameters."""
