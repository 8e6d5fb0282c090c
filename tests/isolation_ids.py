"""Ids of a tenant's objects for the URL sweep, keyed by URL parameter name.

Each app that adds tenant URLs with object ids adds its sample objects here, so
the sweep in test_tenant_isolation.py asks for real objects of tenant A.
"""


def extra_ids(tenant) -> dict:
    from tests.surveys.factories import survey_isolation_ids

    ids = {}
    ids.update(survey_isolation_ids(tenant))
    from tests.events.pages_helpers import events_isolation_ids

    ids.update(events_isolation_ids(tenant))
    from tests.scoring.isolation import scoring_isolation_ids

    ids.update(scoring_isolation_ids(tenant))
    from tests.alerts.isolation import alerts_isolation_ids

    ids.update(alerts_isolation_ids(tenant))
    return ids
