"""``GET /api/v2/operations``: the registry, with each operation's parameter schema."""

from __future__ import annotations

from fastapi import APIRouter

from docworker.api.auth import CallerDep
from docworker.api.deps import ServicesDep
from docworker.api.schemas import OperationInfo, OperationList
from docworker.operations import OPERATIONS

router = APIRouter(prefix="/api/v2", tags=["operations"])


@router.get(
    "/operations",
    operation_id="list_operations",
    summary="List operations",
    response_model=OperationList,
)
async def list_operations(services: ServicesDep, caller: CallerDep) -> OperationList:
    """Every operation the caller may run as a job, and the JSON schema of its params:
    an operation a feature flag closes to the caller is left out (docs/flags.md)."""
    flags = services.flags
    return OperationList(
        operations=[
            OperationInfo(
                name=op.name,
                summary=op.summary,
                queue=op.queue,
                params_schema=op.Params.model_json_schema(),
            )
            for op in OPERATIONS.values()
            if flags is None or flags.allows(op.name, caller)
        ]
    )
