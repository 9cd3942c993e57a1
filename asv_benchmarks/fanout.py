"""Map fan-out: ``total(double.map(x=range(10_000)))`` on a hot and a slow engine, and in raw asyncio."""

import asyncio

from . import _common as c

ELEMENTS = 10_000


async def _double(x):
    return 2 * x


async def _baseline(n):
    return sum(await asyncio.gather(*(_double(x) for x in range(n))))


class MapFanOut:
    """Seconds to map a task over 10,000 elements and reduce the results."""

    params = ["hot", "slow", "baseline"]
    param_names = ["mode"]
    timeout = 120
    repeat = (1, 5, 10.0)

    def setup(self, mode):
        self.loop = c.new_loop()
        self.values = list(range(ELEMENTS))
        self.expected = 2 * sum(self.values)
        if mode == "baseline":
            self.engine = None
        else:
            t = c.tasks()
            if not hasattr(t["double"], "map"):
                raise NotImplementedError("Task.map missing")
            self.engine = c.make_engine(mode)
        assert self.run(mode) == self.expected  # warm-up, and the hot plan is compiled here

    def teardown(self, mode):
        c.close_loop(getattr(self, "loop", None))

    def run(self, mode):
        if mode == "baseline":
            return self.loop.run_until_complete(_baseline(ELEMENTS))
        t = c.tasks()
        target = t["total"](t["double"].map(x=self.values))
        return self.loop.run_until_complete(self.engine.run(target))

    def time_map_10000(self, mode):
        self.run(mode)
