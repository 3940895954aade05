"""Data-parallel training under MindSpore's launcher `msrun`.

`msrun` starts one worker process per device and tells each its place through environment
variables (MS_ROLE=MS_WORKER, MS_WORKER_NUM, RANK_ID, ...). `python -m mindgan.train` started
that way calls `init_workers()` after choosing the device; everything else asks `current()`,
which is a single worker (rank 0 of 1) in a normal run, so nothing changes there.

The semantics: `--batch_size` is the global batch. Every worker draws the same global data
order and noise as one process would and takes its own contiguous slice of each batch;
`mindspore.nn.DistributedGradReducer` averages the gradients, so W workers with global batch
B follow the same mathematics as one process with batch B. The MLP's BatchNorm1d sums its
statistics over all workers (`shard`), as does the dropout of dcgan-mnist its mask index, so
there the runs agree to float rounding; the convolutional families' stock BatchNorm2d keeps
per-worker statistics (MindSpore's SyncBatchNorm is Ascend-only).
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

__all__ = ["Workers", "launched_by_msrun", "is_scheduler", "env_rank", "init_workers", "current", "shard"]


def launched_by_msrun() -> bool:
    """True in a process started by `msrun` (MindSpore's dynamic cluster): a worker, or the
    scheduler, which msrun starts with the same command."""
    return os.environ.get("MS_ROLE") in ("MS_WORKER", "MS_SCHED") and "MS_WORKER_NUM" in os.environ


def is_scheduler() -> bool:
    """True in msrun's scheduler process: its `init_workers` coordinates the workers and ends
    the process when they are done, so it should get there before doing any work."""
    return launched_by_msrun() and os.environ.get("MS_ROLE") == "MS_SCHED"


def env_rank() -> int:
    """This worker's rank as msrun announces it (RANK_ID), known before MindSpore is loaded;
    0 outside msrun."""
    try:
        return int(os.environ.get("RANK_ID", "0")) if launched_by_msrun() and not is_scheduler() else 0
    except ValueError:
        return 0


@dataclasses.dataclass(frozen=True)
class Workers:
    """Where this process stands among the data-parallel workers: `rank` of `size`."""
    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the one worker that writes the run folder and prints progress."""
        return self.rank == 0

    def batch_size(self, global_batch: int) -> int:
        """Each worker's share of a global batch of `global_batch`; ValueError (one line) unless
        it splits evenly."""
        if global_batch % self.size:
            raise ValueError(f"--batch_size {global_batch} is the global batch and must split "
                             f"evenly over the {self.size} msrun workers")
        return global_batch // self.size

    def local(self, global_batch: np.ndarray, axis: int = 0) -> np.ndarray:
        """This worker's contiguous slice of a global batch along `axis` (size divisible)."""
        n = global_batch.shape[axis] // self.size
        index = [slice(None)] * global_batch.ndim
        index[axis] = slice(self.rank * n, (self.rank + 1) * n)
        return global_batch[tuple(index)]

    def any(self, flag: bool) -> bool:
        """True when `flag` is true on any worker (one tiny all-reduce; free for one worker)."""
        if self.size == 1:
            return bool(flag)
        import mindspore as ms

        return bool(_sum_over_workers()(ms.Tensor([float(flag)], ms.float32)).asnumpy()[0] > 0)

    def barrier(self) -> None:
        """Wait until every worker gets here."""
        self.any(False)


_compiled_sum = None


def _sum_over_workers():
    """A compiled sum-all-reduce of a float32 `[1]`: the eager collectives of
    `mindspore.communication.comm_func` have no CPU kernel in MindSpore 2.10, and its CPU
    AllReduce sums only."""
    global _compiled_sum
    if _compiled_sum is None:
        import mindspore as ms
        from mindspore import ops

        reduce_sum = ops.AllReduce()

        def sum_of(x):
            return reduce_sum(x)

        _compiled_sum = ms.jit(sum_of)
    return _compiled_sum


_current = Workers()


def init_workers() -> Workers:
    """Join msrun's cluster (`mindspore.communication.init`, after the device is set) and make
    this process's rank and the number of workers what `current()` returns. In the scheduler
    process this does not return: MindSpore ends it when the workers finish."""
    global _current
    from mindspore.communication import get_group_size, get_rank, init

    init()
    _current = Workers(get_rank(), get_group_size())
    return _current


def current() -> Workers:
    """This process's workers: rank 0 of 1 unless `init_workers` ran."""
    return _current


def shard(net, workers: Workers) -> None:
    """Make `net`'s batch-wide layers see the global batch: BatchNorm1d statistics summed over
    all workers, dropout masks indexed by the element's place in the global batch. Call before
    the first compile; a no-op for one worker."""
    if workers.size == 1:
        return
    for _, cell in net.cells_and_names():
        if hasattr(cell, "use_workers"):  # not Cell.shard: that is MindSpore's own
            cell.use_workers(workers.rank, workers.size)
