"""Shared plumbing with no domain models (CSV writer, ...), used by every app."""
