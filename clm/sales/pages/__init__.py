"""The sales team's dashboard: the pipeline board, leads, lead forms, assignment rules, the forecast and the reports.

Permission `sales` (admin, manager, sales) for the work, `sales:manage` (admin, manager) for forms and rules.
"""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    from clm.sales.pages import board, forecast, forms, leads, reports

    return [board.router, leads.router, forms.router, forecast.router, reports.router]
