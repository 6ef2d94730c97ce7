"""Message templates: the defaults, custom ones, edits and previews in Portuguese."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Controller, Request, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.auth.guards import principal_of, requires
from services.api.controllers.channels import MANAGERS, own_tenant
from shared.domains.audit.service import Actor
from shared.domains.channels import provider, templates, templating
from shared.tenancy import Scopes


class PreviewIn(msgspec.Struct, forbid_unknown_fields=True):
    """Values to try the template with; sample values fill the rest."""

    values: dict[str, str] = msgspec.field(default_factory=dict)


class TemplateController(Controller):
    path = "/v1/templates"
    tags = ["templates"]

    @get(
        "/variables",
        summary="The variables a template may use",
        guards=[requires(Scopes.SETTINGS_READ)],
    )
    async def variables(self) -> dict[str, str]:
        return dict(templating.VARIABLES)

    @get("/", summary="This tenant's templates", guards=[requires(Scopes.SETTINGS_READ)])
    async def list_templates(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        channel_kind: FromQuery[str | None] = None,
        key: FromQuery[str | None] = None,
    ) -> list[templates.TemplateOut]:
        rows = await templates.list_for(db, own_tenant(principal_of(request)), channel_kind, key)
        return [templates.out(r) for r in rows]

    @get("/{template_id:uuid}", summary="One template", guards=[requires(Scopes.SETTINGS_READ)])
    async def get_template(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        template_id: FromPath[uuid.UUID],
    ) -> templates.TemplateOut:
        return templates.out(
            await templates.get(db, own_tenant(principal_of(request)), template_id)
        )

    @post(
        "/",
        summary="Create a template",
        description="Named variables such as {{primeiro_nome}} (see /v1/templates/variables). "
        "WhatsApp templates start as DRAFT until submitted for Meta's review; SMS and e-mail "
        "templates are usable at once.",
        guards=[requires(Scopes.SETTINGS_WRITE, roles=MANAGERS)],
        status_code=201,
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        data: JSONBody[templates.TemplateIn],
    ) -> templates.TemplateOut:
        principal = principal_of(request)
        row = await templates.create(db, own_tenant(principal), data, Actor.of(principal))
        return templates.out(row)

    @patch(
        "/{template_id:uuid}",
        summary="Edit a template (a WhatsApp template goes back to DRAFT for a new review)",
        guards=[requires(Scopes.SETTINGS_WRITE, roles=MANAGERS)],
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        template_id: FromPath[uuid.UUID],
        data: JSONBody[templates.TemplateUpdate],
    ) -> templates.TemplateOut:
        principal = principal_of(request)
        row = await templates.get(db, own_tenant(principal), template_id)
        return templates.out(await templates.update(db, row, data, Actor.of(principal)))

    @post(
        "/{template_id:uuid}/preview",
        summary="What the debtor would read",
        guards=[requires(Scopes.SETTINGS_READ)],
        status_code=200,
    )
    async def preview(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        template_id: FromPath[uuid.UUID],
        data: JSONBody[PreviewIn],
    ) -> templates.Preview:
        row = await templates.get(db, own_tenant(principal_of(request)), template_id)
        return templates.preview(row, data.values)

    @post(
        "/{template_id:uuid}/submit",
        summary="Submit a WhatsApp template for the provider's review",
        description="The template goes to PENDING and is created (or, if the provider knows it "
        "already, edited) in the WABA of each active WhatsApp number; the review's verdict "
        "(APPROVED or REJECTED with a reason) arrives by webhook and by the hourly sync.",
        guards=[requires(Scopes.SETTINGS_WRITE, roles=MANAGERS)],
        status_code=202,
    )
    async def submit(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        template_id: FromPath[uuid.UUID],
    ) -> templates.TemplateOut:
        principal = principal_of(request)
        row = await templates.get(db, own_tenant(principal), template_id)
        await provider.request_submission(db, row, Actor.of(principal))
        return templates.out(row)


TEMPLATE_CONTROLLERS = [TemplateController]
