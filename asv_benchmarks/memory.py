"""Peak memory of a long loop: a tail-call loop must not keep finished iterations alive."""

from . import _common as c

LONG = 200_000
LONG_SLOW = 20_000


class LongLoopMemory:
    """Peak RSS of the process while a long countdown runs (hot: 200,000 iterations; slow: 20,000)."""

    params = ["hot", "slow"]
    param_names = ["mode"]
    timeout = 300

    def setup(self, mode):
        self.loop = c.new_loop()
        self.engine = c.make_engine(mode)
        self.n = LONG if mode == "hot" else LONG_SLOW

    def teardown(self, mode):
        c.close_loop(getattr(self, "loop", None))

    def peakmem_long_loop(self, mode):
        result = self.loop.run_until_complete(c.loop_coro("countdown", mode, self.engine, self.n))
        assert result == "done", result
