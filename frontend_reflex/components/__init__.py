"""Reusable pieces of the dashboard's pages: layout, tables, forms, charts."""
