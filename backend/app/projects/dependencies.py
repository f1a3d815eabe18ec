"""Load a project and check that it belongs to the caller, once, for every route."""

from typing import Annotated

from fastapi import Depends

from app.auth.dependencies import owned, require_permissions
from app.auth.principal import Principal
from app.projects import service
from app.projects.models import Project
from app.projects.permissions import ProjectPermission

ProjectReader = Annotated[Principal, Depends(require_permissions(ProjectPermission.READ))]
ProjectWriter = Annotated[Principal, Depends(require_permissions(ProjectPermission.WRITE))]

ReadableProject = Annotated[
    Project, Depends(owned(service.get, "project", ProjectPermission.READ, path_param="project_id"))
]
WritableProject = Annotated[
    Project,
    Depends(owned(service.get, "project", ProjectPermission.WRITE, path_param="project_id")),
]
