"""Routes for admin (being written)."""

from fastapi import APIRouter

router = APIRouter()
