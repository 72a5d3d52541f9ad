"""The GraphQL admin API: per-domain modules merged in ``schema``, served by ``app``."""
