"""Adapters for the providers Quita talks to (WhatsApp Cloud API, SMS gateways).

Each provider lives in its own package: pure payload builders, an error classifier and a small
async client, so the collections domain never sees a provider's wire format.
"""
