"""Inbound provider traffic: the webhook journal and the processing of what it holds."""
