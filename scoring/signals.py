"""Signals of the scoring app, for the apps that act on new scores (alerts)."""

from django.dispatch import Signal

# Sent (on commit) once a run has recorded its last day: `run_id`.
run_succeeded = Signal()
