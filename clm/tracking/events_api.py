"""Native API routes (filled in by the native API work)."""

from fastapi import APIRouter

router = APIRouter()
