"""Every job kind the product runs, registered when a worker starts (no import-time side effects)."""

from __future__ import annotations

from clm.jobs.runner import Registry


def build_registry(settings) -> Registry:
    """The handlers by kind. Capabilities (journeys, channels, broadcasts) register theirs here."""
    registry = Registry()
    from clm.channels.sending import register as register_sending

    register_sending(registry, settings)  # channels.send: one by one, or a claimed batch with send_many
    from clm.channels import broadcasts, testsend

    broadcasts.register(registry, settings)  # broadcasts.send, broadcasts.finish
    testsend.register(registry, settings)  # channels.test: a staff member's test send
    from clm.journeys.steps import register as register_journeys

    register_journeys(registry, settings)
    from clm.sales.jobs import register as register_sales

    register_sales(registry, settings)  # sales.facebook_lead, tasks.remind
    from clm.service.jobs import register as register_service

    register_service(registry, settings)  # service.sla_warn, service.sla_breach, service.reoffer
    return registry
