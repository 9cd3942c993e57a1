"""Graph build and planning (``cs.build_graph`` + ``cs.NativeSolver().solve``) for 10 to 10,000 nodes."""

from . import _common as c

SIZES = [10, 100, 1_000, 10_000]
WIDTH = 10


def layered(n):
    """A lazy result with exactly ``n`` nodes: a chain where node ``i`` also takes node ``i - WIDTH``."""
    t = c.tasks()
    noop, join = t["noop"], t["join"]
    nodes = [noop(0)]
    for i in range(1, n):
        nodes.append(join(nodes[i - 1], nodes[i - WIDTH] if i >= WIDTH else i))
    return nodes[-1]


class GraphBuildPlan:
    """Seconds to build the graph of an ``n``-node workflow, and to build and plan it."""

    params = SIZES
    param_names = ["nodes"]
    timeout = 120

    def setup(self, n):
        c.require("build_graph", "NativeSolver", "task")
        self.target = layered(n)
        self.solver = c.cs.NativeSolver()
        graph = c.cs.build_graph(self.target)
        assert len(graph.nodes) == n, (len(graph.nodes), n)

    def time_build_graph(self, n):
        c.cs.build_graph(self.target)

    def time_build_and_plan(self, n):
        self.solver.solve(c.cs.build_graph(self.target))
