"""Pages that give the score context: the dashboard (tenant home) and the insight pages.

Thin: every number comes from `insights.queries` (set-based SQL) or
`insights.onboarding`; charts are specs (`insights.charts`) drawn in the browser
by static/js/charts.js, and every chart's numbers are a table or a CSV. Each
insight is one `base.InsightView` (one form, one query; its page and .csv). All
pages are viewer reads wrapped in `accounts.scoping.tenant_view`.
"""
