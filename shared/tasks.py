"""The registry of everything that runs in the background.

Importing this module registers every job (``shared/domains/*/tasks.py``) and every periodic task.
The worker, the scheduler, the api and the webhooks service all import it, so every name written
to the outbox resolves.
"""

from shared.domains.audit import tasks as _audit_tasks  # noqa: F401
from shared.domains.channels import tasks as _channel_tasks  # noqa: F401
from shared.domains.collections import tasks as _collection_tasks  # noqa: F401
from shared.domains.events import tasks as _event_tasks  # noqa: F401
from shared.domains.inbound import assignment as _assignment  # noqa: F401
from shared.domains.inbound import conversations as _conversations  # noqa: F401
from shared.domains.inbound import journal as _inbound_journal  # noqa: F401
from shared.domains.negotiation import lifecycle as _agreement_lifecycle  # noqa: F401
from shared.domains.portfolio import pix_webhooks as _pix_webhooks  # noqa: F401
from shared.domains.portfolio import tasks as _portfolio_tasks  # noqa: F401
from shared.domains.portfolio.imports import tasks as _import_tasks  # noqa: F401
from shared.domains.system import idempotency as _idempotency  # noqa: F401
from shared.domains.system import tasks as _system_tasks  # noqa: F401
from shared.queue import maintenance as _maintenance  # noqa: F401
