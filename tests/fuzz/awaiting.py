"""Fuzz cases that fail today because their fix lives in another area (each is a strict xfail
naming that area). Remove an id once its fix is merged: a strict xfail that passes fails."""
from __future__ import annotations

AWAITING: frozenset[str] = frozenset()
