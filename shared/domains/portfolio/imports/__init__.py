"""Bulk import of customers and installments from CSV or JSON Lines.

``reader`` decodes and parses a file as it streams in and normalizes each row; ``staging`` COPYs
the good rows into ``import_rows`` and records the bad ones; ``merge`` folds the staged rows into
customers and installments with set-based SQL; ``service`` runs the whole flow for the API, the
CLI and the merge job (``tasks``).
"""
