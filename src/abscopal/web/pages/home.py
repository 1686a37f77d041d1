"""The dashboard (web.md §8): what needs doing today, by role."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from abscopal.web.context import SIGNED_IN, Principal, requires
from abscopal.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/")
def dashboard(request: Request, principal: Annotated[Principal, Depends(requires(SIGNED_IN))]) -> Response:
    return render(request, "dashboard.html")
