"""Audit: the append-only, tamper-evident record of everything that touches a debtor.

- ``service.record()`` adds an event in the caller's transaction (no lock, no extra write).
- ``seal.py`` seals ended transactions' events, in rounds, into per-tenant hash chains
  (``audit_seals``); ``tasks.py`` runs a round every minute and keeps monthly partitions ahead.
- ``verify.py`` recomputes the chains and names what was edited, deleted or inserted
  (``quita audit verify``), and gives the digest of the seals covering a set of events.
- ``chain.py`` is the hashing both sides share.
"""
