"""Fixtures shared by every test suite."""

from __future__ import annotations
