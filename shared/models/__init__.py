"""Every ORM model, one file per table; importing this module fills ``Base.metadata``."""

from shared.models.agreement import (
    Agreement,
    AgreementInstallment,
    AgreementInstallmentStatus,
    AgreementOriginal,
    AgreementPayment,
    AgreementStatus,
)
from shared.models.audit import AuditEvent, AuditSeal
from shared.models.channel import Channel, ChannelKind, ChannelStatus
from shared.models.collections import (
    AttemptState,
    Cadence,
    CadenceKind,
    CadenceStep,
    Campaign,
    CollectionHold,
    CollectionSettings,
    ContactAttempt,
    ContactAttemptItem,
    HoldKind,
)
from shared.models.conversation import (
    Conversation,
    ConversationMessage,
    ConversationState,
    MessageDirection,
    OutboundStatus,
)
from shared.models.customer import Customer
from shared.models.customer_phone import CustomerPhone, PhoneStatus
from shared.models.data_import import DataImport, ImportError_, ImportRow, ImportStatus
from shared.models.data_request import DataRequest, DataRequestStatus
from shared.models.fee_rule import CorrectionIndexRate, FeeRuleVersion
from shared.models.idempotency import IdempotencyKey
from shared.models.inbox import ConversationNote, InboxOperator
from shared.models.installment import Installment, InstallmentStatus
from shared.models.mandate import Mandate, MandateAction
from shared.models.membership import Membership, Role
from shared.models.message_template import MessageTemplate, TemplateStatus
from shared.models.negotiation import MandateNegotiationLimits, NegotiationPolicy, Offer
from shared.models.oauth_authorization_code import OAuthAuthorizationCode
from shared.models.oauth_client import OAuthClient
from shared.models.oauth_refresh_token import OAuthRefreshToken
from shared.models.outbound import (
    DeliveryState,
    EndpointStatus,
    TenantEvent,
    WebhookDelivery,
    WebhookEndpoint,
)
from shared.models.outbox import OutboxJob
from shared.models.payment import Payment
from shared.models.pix_connection import PixConnection, PixConnectionStatus
from shared.models.pix_settings import PixSettings
from shared.models.scheduler import SchedulerRun
from shared.models.signing_key import SigningKey
from shared.models.tenant import Tenant, TenantKind, TenantStatus
from shared.models.user import User
from shared.models.webhook import WebhookEvent, WebhookEventState, WebhookReceipt

__all__ = [
    "Agreement",
    "AgreementInstallment",
    "AgreementInstallmentStatus",
    "AgreementOriginal",
    "AgreementPayment",
    "AgreementStatus",
    "AttemptState",
    "AuditEvent",
    "AuditSeal",
    "Cadence",
    "CadenceKind",
    "CadenceStep",
    "Campaign",
    "Channel",
    "ChannelKind",
    "ChannelStatus",
    "CollectionHold",
    "CollectionSettings",
    "ContactAttempt",
    "ContactAttemptItem",
    "Conversation",
    "ConversationMessage",
    "ConversationNote",
    "ConversationState",
    "CorrectionIndexRate",
    "Customer",
    "CustomerPhone",
    "DataImport",
    "DataRequest",
    "DataRequestStatus",
    "DeliveryState",
    "EndpointStatus",
    "FeeRuleVersion",
    "HoldKind",
    "IdempotencyKey",
    "ImportError_",
    "ImportRow",
    "ImportStatus",
    "InboxOperator",
    "Installment",
    "InstallmentStatus",
    "Mandate",
    "MandateAction",
    "MandateNegotiationLimits",
    "Membership",
    "MessageDirection",
    "MessageTemplate",
    "NegotiationPolicy",
    "OAuthAuthorizationCode",
    "OAuthClient",
    "OAuthRefreshToken",
    "Offer",
    "OutboundStatus",
    "OutboxJob",
    "Payment",
    "PhoneStatus",
    "PixConnection",
    "PixConnectionStatus",
    "PixSettings",
    "Role",
    "SchedulerRun",
    "SigningKey",
    "TemplateStatus",
    "Tenant",
    "TenantEvent",
    "TenantKind",
    "TenantStatus",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
    "WebhookEventState",
    "WebhookReceipt",
]
