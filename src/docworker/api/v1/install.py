"""Puts the v1 API on an application: its routes, v1's router rules
(:mod:`~docworker.api.v1.http`), v1's handler errors and the v1 cache janitor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.routing import APIRoute

from docworker.api.routing import mount_routes
from docworker.api.v1 import (
    cache,
    documents,
    extraction,
    health,
    image_convert,
    jobs,
    markdown,
    media,
    ocr,
    pdf_generate,
)
from docworker.api.v1.errors import install_v1_errors
from docworker.api.v1.http import V1_ROOT_PATHS, CorsPolicy, V1Compat
from docworker.cache import CacheJanitor
from docworker.config import Settings

ROUTERS = (
    health,
    jobs,
    ocr,
    extraction,
    markdown,
    cache,
    documents,
    media,
    image_convert,
    pdf_generate,
)


def v1_templates() -> list[str]:
    """The path templates of every v1 route."""
    paths = {
        route.path
        for module in ROUTERS
        for route in module.router.routes
        if isinstance(route, APIRoute)
    }
    return sorted(paths | set(V1_ROOT_PATHS))


def install_v1(app: FastAPI, settings: Settings) -> None:
    """Add the v1 routes, router rules, errors and cache janitor to ``app``.

    Call it after the other middleware is added: v1's rules (CORS on every answer,
    case-insensitive paths) must see the request first.
    """
    install_v1_errors(app)
    for module in ROUTERS:
        mount_routes(app, module.router)
    cors = CorsPolicy(
        origins=tuple(settings.cors.allow_origins),
        credentials=settings.cors.allow_credentials,
        max_age=settings.cors.max_age,
    )
    app.add_middleware(V1Compat, templates=v1_templates(), cors=cors)
    _run_cache_janitor(app, settings)


def _run_cache_janitor(app: FastAPI, settings: Settings) -> None:
    """Wrap the application's lifespan: the v1 cache folder is made and swept while it runs."""
    if not settings.v1.cache_enabled:
        return
    outer = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        async with outer(application) as state:
            folder = cache.file_cache(settings)
            await anyio.to_thread.run_sync(folder.ensure)
            janitor = CacheJanitor(folder, settings.v1.cache_janitor_interval)
            janitor.start()
            try:
                yield state
            finally:
                await anyio.to_thread.run_sync(janitor.stop)

    app.router.lifespan_context = lifespan
