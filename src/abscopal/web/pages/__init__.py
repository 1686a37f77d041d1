"""The server-rendered pages (web.md §8): one router per area."""

from __future__ import annotations

from fastapi import APIRouter

from abscopal.web.pages import auth, home

ROUTERS: list[APIRouter] = [auth.router, home.router]
