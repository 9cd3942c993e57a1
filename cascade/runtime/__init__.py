"""Running graphs: the engine, per-run context, executors, flow, constraints, resources, events."""
