"""Ids of a tenant's objects for the URL sweep, keyed by URL parameter name.

Each app that adds tenant URLs with object ids adds its sample objects here, so
the sweep in test_tenant_isolation.py asks for real objects of tenant A.
"""


def extra_ids(tenant) -> dict:
    return {}
