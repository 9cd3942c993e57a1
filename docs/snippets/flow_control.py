"""Flow control: run_if, Router and sequence (run: python docs/snippets/flow_control.py)."""

import cascade as cs


@cs.task
def is_weekend(day: str) -> bool:
    return day in ("sat", "sun")


@cs.task
def plan(kind: str) -> str:
    return f"plan: {kind}"


@cs.task
def kind_of(day: str) -> str:
    return "rest" if day in ("sat", "sun") else "work"


@cs.task
def step(name: str) -> str:
    print(f"step {name}")
    return name


# run_if: a call that runs only when its condition is truthy; otherwise it is skipped
hike = plan("hike").run_if(is_weekend("sat"))
print(cs.run(hike))  # plan: hike

# Router: the argument takes the value of the route its selector picks; the others never run
day_plan = plan(cs.Router(kind_of("mon"), {"work": plan("office"), "rest": plan("beach")}))
print(cs.run(day_plan))  # plan: plan: office

# sequence: one after another (no data passes); the value is the last step's
print(cs.run(cs.sequence([step("extract"), step("load"), step("report")])))  # report

# a skipped target is an error that says why
try:
    cs.run(plan("hike").run_if(is_weekend("mon")))
except cs.DependencyMissingError as exc:
    print(f"skipped: {exc.reason}")
