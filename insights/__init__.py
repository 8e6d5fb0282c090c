"""The dashboard and the insight pages (docs/insights.md): no models, it reads what the scoring job writes."""
