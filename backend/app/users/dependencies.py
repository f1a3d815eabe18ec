"""Who may administer accounts."""

from typing import Annotated

from fastapi import Depends

from app.auth.dependencies import require_permissions
from app.auth.principal import Principal
from app.users.permissions import UserPermission

UsersAdmin = Annotated[Principal, Depends(require_permissions(UserPermission.ADMIN))]
