"""Rank script for the fault tests: `mpiexec -n 2 python tests/distributed/faults.py MODE`.

exception: rank 1 raises while rank 0 waits in a barrier (the job must end, naming rank 1);
kill: rank 1 kills itself with SIGKILL while rank 0 waits (the launcher ends the job);
timeout: rank 1 sleeps instead of joining the barrier and rank 0's 2 s timeout aborts the job;
exit: rank 1 calls sys.exit(3) while rank 0 waits.
Imports no kernels: it starts in well under a second.
"""
import os
import signal
import sys
import time

import engine.distributed as dist


def main(mode):
    dist.init_process_group("mpi", timeout=2.0 if mode == "timeout" else 60.0)
    rank = dist.get_rank()
    dist.barrier()
    if rank == 1:
        if mode == "exception":
            raise ValueError("injected failure on rank 1")
        if mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if mode == "exit":
            sys.exit(3)
        if mode == "timeout":
            time.sleep(60)
    dist.barrier()                 # rank 0 waits here for a rank that never comes
    print(f"rank {rank}: the second barrier completed, which it must not", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
