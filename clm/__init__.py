"""clm: customer lifecycle management for small and medium businesses."""

__version__ = "0.1.0"
