"""Where transitions run: ``executor:`` of a plan config (``opplan plan --executor``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

__all__ = ["ExecutorConfig"]


class ExecutorConfig(BaseModel):
    """How transitions are run. Not part of the plan's identity: a plan started on one
    executor may be resumed on another, and gives the same plan.json."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["local", "ray"] = Field(
        "local", description="local: one transition at a time in this process; ray: in parallel"
    )
    address: str | None = Field(
        None, description="Ray cluster to join (e.g. 'ray://head:10001'); none: a local instance"
    )
    max_parallel: PositiveInt | None = Field(
        None, description="cap on transitions running at once (none: what the cluster fits)"
    )
    num_cpus: Annotated[float, Field(ge=0)] = Field(1.0, description="CPUs per transition")
    num_gpus: Annotated[float, Field(ge=0)] = Field(0.0, description="GPUs per transition")
    ranks_per_transition: PositiveInt = Field(
        1,
        description="ray: data-parallel processes (DDP) per transition, each with num_cpus and "
        "num_gpus (e.g. num_gpus: 1, ranks_per_transition: 4 = 4 GPUs per transition)",
    )
    max_retries: Annotated[int, Field(ge=0)] = Field(
        2, description="restarts of a transition whose worker died or stalled, then it fails"
    )
    stall_timeout: PositiveFloat | None = Field(
        None, description="seconds one epoch may take before its worker is killed and retried"
    )
