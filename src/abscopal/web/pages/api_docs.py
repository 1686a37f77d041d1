"""``/api/v1/docs``: the API's operations as a page of this site (Swagger UI would load from a CDN, web.md §7)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from abscopal.web.context import PUBLIC, Principal, requires
from abscopal.web.templating import render

router = APIRouter(include_in_schema=False)
_METHODS = ("get", "post", "put", "patch", "delete")


def operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Every operation of the OpenAPI document, grouped by tag order, with its parameters and body model."""
    tags = [t["name"] for t in schema.get("tags", [])]
    ops = []
    for path, item in schema.get("paths", {}).items():
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            ops.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "tag": (op.get("tags") or ["other"])[0],
                    "parameters": [
                        {
                            "name": p["name"],
                            "in": p["in"],
                            "required": p.get("required", False),
                            "description": p.get("description", ""),
                        }
                        for p in op.get("parameters", [])
                    ],
                    "body": body.get("$ref", "").rsplit("/", 1)[-1],
                    "responses": sorted(op.get("responses", {})),
                }
            )
    order = {t: i for i, t in enumerate(tags)}
    return sorted(ops, key=lambda o: (order.get(o["tag"], len(order)), o["path"], o["method"]))


@router.get("/api/v1/docs")
def api_docs(request: Request, _: Annotated[Principal | None, Depends(requires(PUBLIC))]) -> Response:
    schema = request.app.openapi()
    return render(request, "api_docs.html", operations=operations(schema), tags=schema.get("tags", []))
