"""Task bodies on Dask (run: python docs/snippets/dask_square.py; needs the dask extra)."""

from distributed import LocalCluster

import cascade as cs


@cs.task
def square(x: int) -> int:
    return x * x


@cs.task(executor="local")  # stays in this process even when the engine sends every task remote
def total(xs: list[int]) -> int:
    return sum(xs)


if __name__ == "__main__":
    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        executor = cs.DaskExecutor(cluster.scheduler_address)  # opens its own async client per loop
        print(cs.run(total(square.map(x=range(10))), remote=executor))  # 285
        print(f"sent to Dask: {executor.submitted} calls")  # sent to Dask: 10 calls
