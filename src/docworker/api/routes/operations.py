"""``GET /api/v2/operations``: the registry, with each operation's parameter schema."""

from __future__ import annotations

from fastapi import APIRouter

from docworker.api.schemas import OperationInfo, OperationList
from docworker.operations import OPERATIONS

router = APIRouter(prefix="/api/v2", tags=["operations"])


@router.get(
    "/operations",
    operation_id="list_operations",
    summary="List operations",
    response_model=OperationList,
)
async def list_operations() -> OperationList:
    """Every operation the service can run as a job, and the JSON schema of its params."""
    return OperationList(
        operations=[
            OperationInfo(
                name=op.name,
                summary=op.summary,
                queue=op.queue,
                params_schema=op.Params.model_json_schema(),
            )
            for op in OPERATIONS.values()
        ]
    )
