"""Remote executors: where a task's *body* runs when it does not run in this process.

Cascade stays the orchestrator: graph building, tail calls, hot plans, retries, constraints,
resources and events all stay in the engine. Only the call itself, ``fn(*args, **kwargs)`` with its
arguments already resolved, is handed to a :class:`RemoteExecutor`. The engine decides which calls
go remote when it compiles a program (``Engine(remote=...)`` and ``@cs.task(executor=...)``); a
remote call is *governed* (``Step.governed``), so it always takes the scheduler's ``_call`` path,
on the hot path too, and a program without remote calls compiles exactly as before.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Protocol, runtime_checkable

__all__ = ["LOCAL", "RemoteExecutor", "remote_resolver"]

LOCAL = "local"  # ``@cs.task(executor="local")``: always in this process


@runtime_checkable
class RemoteExecutor(Protocol):
    """What the engine needs from a remote executor (``cs.DaskExecutor`` is one).

    ``name`` is what ``@cs.task(executor=name)`` refers to. ``call`` runs one attempt of a call
    remotely and returns its value or raises the body's own exception; it is awaited by the run,
    so a cancelled run cancels it, and it must not return before the remote side has finished or
    acknowledged the cancellation (constraint slots are held until then). ``check_shippable``
    raises :class:`cascade.ResourceError` naming the task and resource when a resource value
    cannot be sent with the call.
    """

    name: str

    async def call(self, fn: Callable[..., Any], args: Any, kwargs: Mapping[str, Any], *,
                   task_name: str, is_async: bool) -> Any:
        """Run ``fn(*args, **kwargs)`` remotely (awaiting it when ``is_async``) and return its value."""
        ...

    def check_shippable(self, task_name: str, resource: str, value: Any) -> None:
        """Raise ``ResourceError`` if ``value`` of ``resource`` cannot be sent with a call of ``task_name``."""
        ...


def remote_resolver(remote: Any) -> tuple[dict[str, RemoteExecutor], Callable[[Any], Any]]:
    """Check an ``Engine(remote=...)`` option; return executors by name and the compiler's
    ``task -> executor or None`` function (it raises ``ValueError`` for an executor name the
    engine does not have, at compile time, before anything of the run starts).

    ``remote`` is one :class:`RemoteExecutor` (every task runs on it unless declared
    ``executor="local"``) or a mapping ``name -> RemoteExecutor`` (only tasks declared
    ``executor=name`` run remotely). Raises ``TypeError`` for anything else.
    """
    default: RemoteExecutor | None = None
    if remote is None:
        named: dict[Any, Any] = {}
    elif isinstance(remote, Mapping):
        named = dict(remote)
    else:
        default = remote
        named = {getattr(remote, "name", None): remote}
    for key, ex in named.items():
        if not isinstance(ex, RemoteExecutor):
            raise TypeError(f"Engine(remote=...) needs RemoteExecutors (e.g. cs.DaskExecutor), got {ex!r}")
        if not isinstance(key, str) or not key or key == LOCAL:
            raise TypeError(f"Engine(remote=...): executor name {key!r} must be a non-empty string other than 'local'")

    def resolve(task: Any) -> RemoteExecutor | None:
        wanted = task.executor
        if wanted is None:
            return default
        if wanted == LOCAL:
            return None
        ex = named.get(wanted)
        if ex is None:
            known = ", ".join(repr(k) for k in named) or "none"
            raise ValueError(
                f"task {task.name!r} asks for executor {wanted!r}, which this engine does not have "
                f"(remote executors: {known}; Engine(remote={{{wanted!r}: ...}}) adds it)"
            )
        return ex

    return named, resolve


def check_resources(st: Any, run_values: Mapping[str, Any], task_values: Mapping[str, Any] | None) -> None:
    """Before a remote call: every resource value it receives must be shippable (a clear error
    naming the resource and the task, instead of a pickling error from deep inside the executor)."""
    for name in st.run_resources:
        st.remote.check_shippable(st.name, name, run_values[name])
    for name in st.task_resources:
        if task_values is not None:
            st.remote.check_shippable(st.name, name, task_values[name])
