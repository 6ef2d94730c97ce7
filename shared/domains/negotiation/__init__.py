"""Negotiation: the retailer's policy, agencies' limits under their mandates, and offers."""
