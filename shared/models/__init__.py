"""Every ORM model, one file per table; importing this module fills ``Base.metadata``."""

from shared.models.audit import AuditEvent
from shared.models.mandate import Mandate, MandateAction
from shared.models.membership import Membership, Role
from shared.models.oauth_authorization_code import OAuthAuthorizationCode
from shared.models.oauth_client import OAuthClient
from shared.models.oauth_refresh_token import OAuthRefreshToken
from shared.models.outbox import OutboxJob
from shared.models.scheduler import SchedulerRun
from shared.models.signing_key import SigningKey
from shared.models.tenant import Tenant, TenantKind, TenantStatus
from shared.models.user import User

__all__ = [
    "AuditEvent",
    "Mandate",
    "MandateAction",
    "Membership",
    "OAuthAuthorizationCode",
    "OAuthClient",
    "OAuthRefreshToken",
    "OutboxJob",
    "Role",
    "SchedulerRun",
    "SigningKey",
    "Tenant",
    "TenantKind",
    "TenantStatus",
    "User",
]
