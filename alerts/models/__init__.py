"""The alerts app's models, one module per concept (rules and deliveries; digests)."""
