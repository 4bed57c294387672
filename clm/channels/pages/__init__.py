"""Dashboard pages of the channels (permission `channels`: admin, manager, marketer): broadcasts (composer,
test send, report), templates (edit makes a version, preview with a chosen customer), the messages
(search by customer or status) and the channel settings (which providers are set, a test send each).
Thin over clm.channels.broadcasts, templates, service and testsend."""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    from clm.channels.pages import broadcasts, messages, providers, templates

    return [broadcasts.router, templates.router, messages.router, providers.router]
