"""The outbox: domain events written with the facts, read by reactions."""
