from __future__ import annotations

from shared.errors import Conflict, ValidationFailed


class DuplicateTenant(Conflict):
    code = "tenant_exists"


class DuplicateUser(Conflict):
    code = "user_exists"


class InvalidMandate(ValidationFailed):
    code = "invalid_mandate"
