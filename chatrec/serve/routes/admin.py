"""Site keys over HTTP: ``GET/POST /v1/admin/keys``, ``DELETE /v1/admin/keys/{id}``.

Every route here needs ``Authorization: Bearer <admin token>`` (``serve.admin_token``,
``--admin-token`` or ``CHATREC_SERVE__ADMIN_TOKEN``); with no token configured the admin API is
off (404). Admin paths are never served cross-origin (:mod:`chatrec.serve.middleware`).
A new key is shown once, in the POST's answer: only its hash is stored. The answer also
holds the key's ``signing_secret`` (for the shop's backend to sign user tokens; stored,
shown only here); ``POST /v1/admin/keys/{id}/secret`` replaces it and shows the new one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from chatrec.config import normalize_origin
from chatrec.serve.deps import AdminOnly, KeysDep
from chatrec.serve.errors import ApiError

MAX_ID = 2**63 - 1  # SQLite's largest integer: a larger id is a 422, not an overflow deep in the store

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[AdminOnly])


class KeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    origins: list[str] = Field(default_factory=list, max_length=50)
    label: str = Field("", max_length=200)

    @field_validator("origins")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        return [normalize_origin(o) for o in v]


@router.get("/keys")
def list_keys(keys: KeysDep):
    return {"keys": [k.public() for k in keys.list()]}


@router.post("/keys", status_code=201)
def add_key(body: KeyRequest, keys: KeysDep):
    plain, record = keys.add(body.origins, body.label)
    return {"key": plain, "signing_secret": record.signing_secret, **record.public()}


@router.post("/keys/{key_id}/secret", status_code=201)
def rotate_secret(key_id: Annotated[int, PathParam(ge=1, le=MAX_ID)], keys: KeysDep):
    secret = keys.rotate_secret(key_id)
    if secret is None:
        raise ApiError(404, f"no active key {key_id}")
    return {"id": key_id, "signing_secret": secret}


@router.delete("/keys/{key_id}", status_code=204)
def revoke_key(key_id: Annotated[int, PathParam(ge=1, le=MAX_ID)], keys: KeysDep):
    if not keys.revoke(key_id):
        raise ApiError(404, f"no active key {key_id}")
    return Response(status_code=204)
