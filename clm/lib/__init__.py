"""Helpers that know nothing of the domain: one module per topic. Nothing here imports clm domain code."""
