"""Platform administration: tenants, users, their first members and clients, signing keys.
Only tokens with the ``admin`` scope (platform admins and platform clients) get here."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.auth.guards import platform_admin, principal_of, requires
from services.api.auth.state import auth_state
from shared.domains.audit.service import Actor, record
from shared.domains.identity import keys, schemas, service
from shared.errors import NotFound, ValidationFailed
from shared.models import Role, Tenant, User
from shared.tenancy import SYSTEM, Scopes, use_scope


class KeyRotated(msgspec.Struct):
    kid: str


class AdminController(Controller):
    path = "/v1/admin"
    tags = ["admin"]
    guards = [requires(Scopes.ADMIN), platform_admin]

    @post("/tenants", summary="Onboard a retailer or an agency")
    async def create_tenant(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        data: JSONBody[schemas.TenantCreate],
    ) -> schemas.TenantOut:
        await use_scope(db, SYSTEM)
        actor = Actor.of(principal_of(request))
        return service.tenant_out(await service.create_tenant(db, data, actor))

    @get("/tenants", summary="Every tenant")
    async def list_tenants(self, db: NamedDependency[AsyncSession]) -> list[schemas.TenantOut]:
        await use_scope(db, SYSTEM)
        rows = await db.scalars(select(Tenant).order_by(Tenant.created_at))
        return [service.tenant_out(t) for t in rows]

    @get("/tenants/{tenant_id:uuid}", summary="One tenant")
    async def get_tenant(
        self, db: NamedDependency[AsyncSession], tenant_id: FromPath[uuid.UUID]
    ) -> schemas.TenantOut:
        await use_scope(db, SYSTEM)
        return service.tenant_out(await service.get_tenant(db, tenant_id))

    @post("/users", summary="Create a person's account")
    async def create_user(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        data: JSONBody[schemas.UserCreate],
    ) -> schemas.UserOut:
        await use_scope(db, SYSTEM)
        user = await service.create_user(db, data, Actor.of(principal_of(request)))
        return schemas.UserOut(
            id=user.id,
            email=user.email,
            name=user.name,
            is_platform_admin=user.is_platform_admin,
            active=user.active,
        )

    @post("/tenants/{tenant_id:uuid}/members", summary="Give a person a role in a tenant")
    async def add_member(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        tenant_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.MemberCreate],
    ) -> schemas.MemberOut:
        await use_scope(db, SYSTEM)
        tenant = await service.get_tenant(db, tenant_id)
        user = None
        if data.user_id is not None:
            user = await db.get(User, data.user_id)
        elif data.email is not None:
            user = await service.find_user(db, data.email)
        else:
            raise ValidationFailed("Name the person by user_id or e-mail.")
        if user is None:
            raise NotFound("No such user.")
        m = await service.add_member(
            db, tenant.id, user, Role(data.role), Actor.of(principal_of(request))
        )
        return schemas.MemberOut(
            id=m.id,
            user_id=m.user_id,
            tenant_id=m.tenant_id,
            email=user.email,
            name=user.name,
            role=m.role,
        )

    @post("/tenants/{tenant_id:uuid}/clients", summary="Create an API client for a tenant")
    async def create_client(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        tenant_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.ClientCreate],
    ) -> schemas.ClientWithSecret:
        await use_scope(db, SYSTEM)
        tenant = await service.get_tenant(db, tenant_id)
        client, secret = await service.create_client(
            db, tenant.id, data, Actor.of(principal_of(request))
        )
        return schemas.ClientWithSecret(client=service.client_out(client), client_secret=secret)

    @post("/keys/rotate", summary="Rotate the access-token signing key (no downtime)")
    async def rotate_keys(
        self, request: Request[Any, Any, Any], db: NamedDependency[AsyncSession]
    ) -> KeyRotated:
        await use_scope(db, SYSTEM)
        row = await keys.create_key(db)
        await record(
            db,
            "keys.rotated",
            tenant_id=None,
            actor_type="user",
            actor_id=principal_of(request).subject,
            subject_type="signing_key",
            subject_id=row.kid,
        )
        await db.commit()
        auth_state(request.app).keys.invalidate()
        return KeyRotated(kid=row.kid)
