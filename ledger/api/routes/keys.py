"""Signing keys: the verifier keys checkpoints are signed with."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ledger.api.deps import ServiceDep
from ledger.api.models import KeyList

router = APIRouter(prefix="/v1/keys", tags=["keys"])


@router.get(
    "",
    response_model=KeyList,
    summary="Signing keys, active and retired",
    description="`verifier_key` is the format §3 string `<name>+<key id>+<base64(0x01||key)>`.",
)
def list_keys(service: ServiceDep) -> dict[str, Any]:
    return {"items": [key.to_dict() for key in service.list_keys()]}
