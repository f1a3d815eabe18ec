"""The queue's admin page at /admin/queue: HTML, a script and a stylesheet, all served
by the service itself (no outside request; `app.core.web.protections` gives /admin/
pages a Content-Security-Policy that allows nothing else).

The page holds no data of its own: it signs in through `POST /api/v1/auth/login`,
keeps the access token in memory only, and reads and acts through the JSON endpoints
under /api/v1/queue, which check the `queue:admin` permission.
"""

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

PAGE_URL = "/admin/queue"
ASSETS_URL = "/admin/queue/assets"
ASSETS = Path(__file__).resolve().parent / "page"


def install_admin_page(app: FastAPI) -> None:
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="queue-admin-assets")

    @app.get(PAGE_URL, include_in_schema=False)
    async def queue_admin_page() -> FileResponse:
        return FileResponse(ASSETS / "index.html", media_type="text/html; charset=utf-8")
