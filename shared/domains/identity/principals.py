"""From a verified access token to the :class:`Principal` services receive."""

from __future__ import annotations

from shared.db import SessionMaker
from shared.domains.identity.service import agency_grants
from shared.domains.identity.tokens import AccessToken
from shared.models import Role, TenantKind
from shared.tenancy import SYSTEM, Grant, Principal, PrincipalKind, Scopes, use_scope


async def principal_for(token: AccessToken, maker: SessionMaker) -> Principal:
    """Build the caller; an agency's mandates are read now, so a revocation takes effect at once."""
    is_user = token.subject != token.client_id
    kind = TenantKind(token.tenant_kind) if token.tenant_kind else None
    grants: tuple[Grant, ...] = ()
    if kind is TenantKind.AGENCY and token.tenant_id is not None:
        async with maker() as session:
            await use_scope(session, SYSTEM)
            grants = await agency_grants(session, token.tenant_id)
            await session.rollback()
    return Principal(
        kind=PrincipalKind.USER if is_user else PrincipalKind.CLIENT,
        subject=token.subject,
        client_id=token.client_id,
        tenant_id=token.tenant_id,
        tenant_kind=kind,
        scopes=token.scopes,
        role=Role(token.role) if token.role else None,
        is_platform_admin=Scopes.ADMIN.value in token.scopes,
        grants=grants,
        token_id=token.token_id,
    )
