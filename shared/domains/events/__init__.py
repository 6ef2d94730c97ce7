"""Events: what happens in a tenant, told to the tenant's own systems by signed webhooks.

- ``service.emit()`` records an event in the caller's transaction and, in the same statement,
  queues it for every endpoint of the tenant that wants it (and a delivery job per endpoint).
- ``endpoints.py`` manages a tenant's endpoints: URL, event-type filter, the ``whsec_`` secret
  (shown once, stored encrypted, rotated with overlap), the delivery log and manual replay.
- ``delivery.py`` sends one endpoint's queue in event order, one at a time, signed per the
  Standard Webhooks spec; retries with backoff for about three days; disables an endpoint that
  answers 410 Gone or keeps failing, and tells the tenant's owners by e-mail (``notices.py``).
- ``tasks.py``: the delivery and notice jobs (queue ``webhooks_out``), the safety net that
  re-queues stalled endpoints, pruning, and the ``installment.settled`` listener.
"""

from shared.domains.events.service import EVENT_TYPES, emit

__all__ = ["EVENT_TYPES", "emit"]
