"""Multi-process training with torch DistributedDataParallel, launched by torchrun.

`torchrun --nproc-per-node N -m edgedistill distill ...` starts N copies; each finds its rank in
the environment torchrun sets. gloo on CPU, nccl on GPU. Every global batch is split between the
ranks; gradients are averaged by DDP; only rank 0 writes files.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    rank: int
    world: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def from_environment() -> DistContext | None:
    """Join the process group torchrun describes in the environment; None for one process."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    import torch
    import torch.distributed as dist

    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    context = DistContext(
        dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), backend
    )
    log.info("rank %d of %d (%s)", context.rank, context.world, backend)
    return context


def is_main(context: DistContext | None) -> bool:
    return context is None or context.is_main


def training_device(context: DistContext | None) -> torch.device:
    import torch

    if not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", context.local_rank if context else 0)


def barrier(context: DistContext | None) -> None:
    if context is not None:
        import torch.distributed as dist

        dist.barrier()


def broadcast(context: DistContext | None, value: Any) -> Any:
    """Rank 0's value on every rank (any picklable object sent between our own processes)."""
    if context is None:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def any_rank(context: DistContext | None, flag: bool, device: torch.device) -> bool:
    """True on every rank when it is true on at least one."""
    if context is None:
        return flag
    import torch
    import torch.distributed as dist

    tensor = torch.tensor([int(flag)], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def sync_buffers(context: DistContext | None, model: nn.Module) -> None:
    """Copy rank 0's buffers (batch-norm statistics) to every rank, so evaluations agree."""
    if context is None:
        return
    import torch.distributed as dist

    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)


def wrap(context: DistContext | None, model: nn.Module, device: torch.device) -> nn.Module:
    if context is None:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def shutdown(context: DistContext | None) -> None:
    if context is not None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
