"""Admin services: plain async functions per domain, with validation and authorization.

Used by the GraphQL API and the CLI. Every function takes the acting principal (a ``User`` or
``SYSTEM`` for the CLI) and raises ``AdminError`` subclasses for refusals and bad input.
"""
