"""`CacheDep`: the process's cache (`app.state.cache`, made by the lifespan) in a handler."""

from typing import Annotated

from fastapi import Depends, Request

from app.essentials.cache.facade import Cache


async def get_cache(request: Request) -> Cache:
    cache: Cache = request.app.state.cache
    return cache


CacheDep = Annotated[Cache, Depends(get_cache)]
