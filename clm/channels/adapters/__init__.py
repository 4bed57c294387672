"""One module per provider; each speaks that provider's documented wire format (see base.py)."""
