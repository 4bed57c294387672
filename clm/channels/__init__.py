"""Channels: the message outbox and the adapters that deliver it (email, SMS, Zalo, Messenger, webhooks)."""
