"""A tenant's own identity resources: who am I, the tenant, its members, API clients, mandates,
and its audit trail.  Parse, call the service, shape the answer."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.auth.guards import principal_of, requires
from shared.domains.audit.service import Actor
from shared.domains.identity import schemas, service
from shared.errors import Forbidden, NotFound, ValidationFailed
from shared.models import AuditEvent, Mandate, Membership, OAuthClient, Role, Tenant, User
from shared.tenancy import Principal, Scopes
from shared.tenancy.query import get_or_404, owned

MANAGERS = (Role.OWNER, Role.ADMIN)


def _me(request: Request[Any, Any, Any]) -> Principal:
    return principal_of(request)


async def _own_tenant(db: AsyncSession, principal: Principal) -> Tenant:
    if principal.tenant_id is None:
        raise NotFound("This token acts for no tenant.")
    return await service.get_tenant(db, principal.tenant_id)


class MeController(Controller):
    path = "/v1"
    tags = ["identity"]

    @get("/me", summary="Who the token belongs to")
    async def me(
        self, request: Request[Any, Any, Any], db: NamedDependency[AsyncSession]
    ) -> schemas.Me:
        principal = _me(request)
        tenant = await service.get_tenant(db, principal.tenant_id) if principal.tenant_id else None
        mandates = []
        if principal.grants:
            rows = await db.scalars(
                select(Mandate).where(Mandate.id.in_([g.mandate_id for g in principal.grants]))
            )
            mandates = [service.mandate_out(m) for m in rows]
        return schemas.Me(
            kind=principal.kind.value,
            subject=principal.subject,
            client_id=principal.client_id,
            tenant=service.tenant_out(tenant) if tenant else None,
            role=principal.role.value if principal.role else None,
            scopes=sorted(principal.scopes),
            mandates=mandates,
        )

    @get(
        "/tenant", summary="The tenant this token acts for", guards=[requires(Scopes.SETTINGS_READ)]
    )
    async def get_tenant(
        self, request: Request[Any, Any, Any], db: NamedDependency[AsyncSession]
    ) -> schemas.TenantOut:
        return service.tenant_out(await _own_tenant(db, _me(request)))

    @patch(
        "/tenant",
        summary="Update the creditor's identification",
        guards=[requires(Scopes.SETTINGS_WRITE, roles=MANAGERS)],
    )
    async def update_tenant(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        data: JSONBody[schemas.TenantUpdate],
    ) -> schemas.TenantOut:
        principal = _me(request)
        tenant = await _own_tenant(db, principal)
        return service.tenant_out(
            await service.update_tenant(db, tenant, data, Actor.of(principal))
        )


class MembersController(Controller):
    path = "/v1/members"
    tags = ["identity"]

    @get("/", summary="People with access to this tenant", guards=[requires(Scopes.SETTINGS_READ)])
    async def list_members(
        self, request: Request[Any, Any, Any], db: NamedDependency[AsyncSession]
    ) -> list[schemas.MemberOut]:
        principal = _me(request)
        rows = await db.execute(
            owned(Membership, principal)
            .add_columns(User.email, User.name)
            .join(User, User.id == Membership.user_id)
            .order_by(User.email)
        )
        return [_member_out(m, email, name) for m, email, name in rows]

    @post(
        "/",
        summary="Give a person a role in this tenant",
        guards=[requires(Scopes.SETTINGS_WRITE, roles=MANAGERS)],
    )
    async def add_member(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        data: JSONBody[schemas.MemberCreate],
    ) -> schemas.MemberOut:
        principal = _me(request)
        _may_grant(principal, Role(data.role))
        if data.email is None:
            raise ValidationFailed("Name the person by e-mail.")
        user = await service.find_user(db, data.email)
        if user is None:
            raise NotFound("No Quita user has this e-mail; a platform admin creates users.")
        tenant = await _own_tenant(db, principal)
        m = await service.add_member(db, tenant.id, user, Role(data.role), Actor.of(principal))
        return _member_out(m, user.email, user.name)

    @patch(
        "/{membership_id:uuid}",
        summary="Change a member's role",
        guards=[requires(Scopes.SETTINGS_WRITE, roles=MANAGERS)],
    )
    async def change_role(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        membership_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.MemberUpdate],
    ) -> schemas.MemberOut:
        principal = _me(request)
        m = await get_or_404(db, owned(Membership, principal), membership_id, "Member")
        _may_grant(principal, Role(data.role))
        _may_grant(principal, m.role)
        m = await service.change_role(db, m, Role(data.role), Actor.of(principal))
        user = await db.get(User, m.user_id)
        assert user is not None
        return _member_out(m, user.email, user.name)

    @delete(
        "/{membership_id:uuid}",
        summary="Remove a member",
        guards=[requires(Scopes.SETTINGS_WRITE, roles=MANAGERS)],
    )
    async def remove_member(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        membership_id: FromPath[uuid.UUID],
    ) -> None:
        principal = _me(request)
        m = await get_or_404(db, owned(Membership, principal), membership_id, "Member")
        _may_grant(principal, m.role)
        await service.remove_member(db, m, Actor.of(principal))


def _may_grant(principal: Principal, role: Role) -> None:
    """Only an owner hands out or takes away ownership."""
    if role is Role.OWNER and principal.role is not Role.OWNER:
        raise Forbidden("Only an owner can grant or remove the owner role.")


def _member_out(m: Membership, email: str, name: str) -> schemas.MemberOut:
    return schemas.MemberOut(
        id=m.id, user_id=m.user_id, tenant_id=m.tenant_id, email=email, name=name, role=m.role
    )


class ClientsController(Controller):
    path = "/v1/clients"
    tags = ["identity"]

    @get("/", summary="This tenant's API clients", guards=[requires(Scopes.SETTINGS_READ)])
    async def list_clients(
        self, request: Request[Any, Any, Any], db: NamedDependency[AsyncSession]
    ) -> list[schemas.ClientOut]:
        rows = await db.scalars(owned(OAuthClient, _me(request)).order_by(OAuthClient.created_at))
        return [service.client_out(c) for c in rows]

    @post(
        "/",
        summary="Create an API client (the secret is shown once)",
        guards=[requires(Scopes.SETTINGS_WRITE, roles=MANAGERS)],
    )
    async def create_client(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        data: JSONBody[schemas.ClientCreate],
    ) -> schemas.ClientWithSecret:
        principal = _me(request)
        tenant = await _own_tenant(db, principal)
        client, secret = await service.create_client(db, tenant.id, data, Actor.of(principal))
        return schemas.ClientWithSecret(client=service.client_out(client), client_secret=secret)

    @get("/{client_uuid:uuid}", summary="One API client", guards=[requires(Scopes.SETTINGS_READ)])
    async def get_client(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        client_uuid: FromPath[uuid.UUID],
    ) -> schemas.ClientOut:
        c = await get_or_404(db, owned(OAuthClient, _me(request)), client_uuid, "Client")
        return service.client_out(c)

    @post(
        "/{client_uuid:uuid}/secret",
        summary="Rotate the secret (the old one works 24 h more)",
        guards=[requires(Scopes.SETTINGS_WRITE, roles=MANAGERS)],
    )
    async def rotate_secret(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        client_uuid: FromPath[uuid.UUID],
    ) -> schemas.ClientWithSecret:
        principal = _me(request)
        c = await get_or_404(db, owned(OAuthClient, principal), client_uuid, "Client")
        secret = await service.rotate_client_secret(db, c, Actor.of(principal))
        return schemas.ClientWithSecret(client=service.client_out(c), client_secret=secret)

    @delete(
        "/{client_uuid:uuid}",
        summary="Revoke a client and every token it holds",
        guards=[requires(Scopes.SETTINGS_WRITE, roles=MANAGERS)],
    )
    async def revoke_client(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        client_uuid: FromPath[uuid.UUID],
    ) -> None:
        from services.api.auth.state import auth_state
        from services.common.http import resources

        principal = _me(request)
        c = await get_or_404(db, owned(OAuthClient, principal), client_uuid, "Client")
        await service.revoke_client(db, c, Actor.of(principal))
        await service.suspend_access_of(db, c)
        await db.commit()
        res = resources(request.app.state)
        await auth_state(request.app).revoke(
            res.redis,
            "client",
            c.client_id,
            at=int(c.revoked_at.timestamp()) + 1,  # type: ignore[union-attr]
            ttl_s=res.settings.access_token_ttl_s + 60,
        )


class MandatesController(Controller):
    path = "/v1/mandates"
    tags = ["identity"]

    @get(
        "/",
        summary="Mandates given (retailer) or held (agency)",
        guards=[requires(Scopes.SETTINGS_READ)],
    )
    async def list_mandates(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        active: FromQuery[bool | None] = None,
    ) -> list[schemas.MandateOut]:
        principal = _me(request)
        rows = await db.scalars(_mandates_of(principal).order_by(Mandate.created_at))
        out = [service.mandate_out(m) for m in rows]
        return [m for m in out if active is None or m.active == active]

    @post(
        "/",
        summary="Give an agency a mandate over some or all customers",
        guards=[requires(Scopes.SETTINGS_WRITE, roles=MANAGERS)],
    )
    async def create_mandate(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        data: JSONBody[schemas.MandateCreate],
    ) -> schemas.MandateOut:
        principal = _me(request)
        tenant = await _own_tenant(db, principal)
        return service.mandate_out(
            await service.create_mandate(db, tenant, data, Actor.of(principal))
        )

    @get("/{mandate_id:uuid}", summary="One mandate", guards=[requires(Scopes.SETTINGS_READ)])
    async def get_mandate(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        mandate_id: FromPath[uuid.UUID],
    ) -> schemas.MandateOut:
        m = await get_or_404(db, _mandates_of(_me(request)), mandate_id, "Mandate")
        return service.mandate_out(m)

    @post(
        "/{mandate_id:uuid}/revoke",
        summary="Revoke a mandate (effective at once)",
        guards=[requires(Scopes.SETTINGS_WRITE, roles=MANAGERS)],
    )
    async def revoke_mandate(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        mandate_id: FromPath[uuid.UUID],
    ) -> schemas.MandateOut:
        principal = _me(request)
        # Only the retailer that gave it may revoke it.
        m = await get_or_404(db, owned(Mandate, principal), mandate_id, "Mandate")
        return service.mandate_out(await service.revoke_mandate(db, m, Actor.of(principal)))


def _mandates_of(principal: Principal) -> Any:
    return select(Mandate).where(
        (Mandate.tenant_id == principal.tenant_id) | (Mandate.agency_id == principal.tenant_id)
    )


class AuditController(Controller):
    path = "/v1/audit-events"
    tags = ["audit"]

    @get(
        "/", summary="This tenant's audit trail, newest first", guards=[requires(Scopes.AUDIT_READ)]
    )
    async def list_events(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        before: FromQuery[int | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
        action: Annotated[str | None, QueryParameter(description="e.g. payment.recorded")] = None,
        subject_type: Annotated[str | None, QueryParameter(description="e.g. installment")] = None,
        subject_id: FromQuery[str | None] = None,
    ) -> list[schemas.AuditEventOut]:
        stmt = owned(AuditEvent, _me(request)).order_by(AuditEvent.id.desc()).limit(limit)
        if before is not None:
            stmt = stmt.where(AuditEvent.id < before)
        if action:
            stmt = stmt.where(AuditEvent.action == action)
        if subject_type:
            stmt = stmt.where(AuditEvent.subject_type == subject_type)
        if subject_id:
            stmt = stmt.where(AuditEvent.subject_id == subject_id)
        rows = await db.scalars(stmt)
        return [
            schemas.AuditEventOut(
                id=e.id,
                actor_type=e.actor_type,
                actor_id=e.actor_id,
                action=e.action,
                subject_type=e.subject_type,
                subject_id=e.subject_id,
                data=e.data,
                request_id=e.request_id,
                created_at=e.created_at,
            )
            for e in rows
        ]


IDENTITY_CONTROLLERS = [
    MeController,
    MembersController,
    ClientsController,
    MandatesController,
    AuditController,
]
