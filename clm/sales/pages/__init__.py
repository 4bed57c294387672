"""The sales team's dashboard: the pipeline board, a deal's page, leads, lead forms, assignment and points rules,
the forecast and the reports.

Permission `sales` (admin, manager, sales) for the work, `sales:manage` (admin, manager) for forms and rules.
"""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    from clm.sales.pages import board, deal, forecast, forms, leads, points, reports

    return [board.router, deal.router, leads.router, forms.router, points.router, forecast.router, reports.router]
