"""Routing: which model answers a request, in which order, and what to do when one fails.

    refs.py       ModelRef, parse_model_ref: "provider/model" and bare names
    resolve.py    resolve(): agent tiers, aliases (org beats global), fallback chains
    stats.py      LatencyStats (EWMA), InFlight, RoundRobin counters
    strategy.py   order(): ordered | cheapest | fastest | least-busy | round-robin
    health.py     CircuitBreaker per (provider, model) and per provider
    fallback.py   run_with_fallback(): retries, backoff, skipping open circuits
    catalog.py    CatalogEntry, build_catalog(): every model the gateway can serve
    router.py     Router: the facade the pipeline and the admin API hold
    ollama_discovery.py  discover(), OllamaDiscovery background refresher

Import from the modules (this package re-exports nothing, so ``backend.pricing`` can depend on
``backend.routing.refs`` without an import cycle).
"""
