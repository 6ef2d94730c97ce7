"""Every ORM model, one file per table; importing this module fills ``Base.metadata``."""

from shared.models.outbox import OutboxJob
from shared.models.scheduler import SchedulerRun
from shared.models.tenant import Tenant, TenantKind

__all__ = ["OutboxJob", "SchedulerRun", "Tenant", "TenantKind"]
