"""Cascade: declarative async workflows with tail calls and hot plans.

This module is the one public door; everything else may be reorganised freely.
"""

from __future__ import annotations

from .adapters.connector import Connector as Connector
from .adapters.connector import InMemoryConnector as InMemoryConnector
from .adapters.connector import Message as Message
from .adapters.connector import Subscription as Subscription
from .adapters.dask_executor import DaskExecutor as DaskExecutor
from .adapters.file_cache import FileCache as FileCache
from .adapters.redis_cache import RedisCache as RedisCache
from .adapters.redis_state import RedisStateBackend as RedisStateBackend
from .adapters.serialization import Serializer as Serializer
from .adapters.serialization import Unserialisable as Unserialisable
from .adapters.telemetry import TelemetryPublisher as TelemetryPublisher
from .errors import CascadeError as CascadeError
from .errors import CorruptEntryError as CorruptEntryError
from .errors import CycleError as CycleError
from .errors import DependencyMissingError as DependencyMissingError
from .errors import ParamError as ParamError
from .errors import ResourceError as ResourceError
from .errors import RouteError as RouteError
from .errors import StoreError as StoreError
from .graph.build import build_graph as build_graph
from .graph.model import Graph as Graph
from .graph.plan import ExecutionPlan as ExecutionPlan
from .graph.plan import NativeSolver as NativeSolver
from .graph.render import dry_run as dry_run
from .graph.render import visualize as visualize
from .runtime.constraints import Constraint as Constraint
from .runtime.constraints import ConstraintManager as ConstraintManager
from .runtime.control import ConstraintListener as ConstraintListener
from .runtime.engine import Engine as Engine
from .runtime.engine import run as run
from .runtime.events import CacheBypassed as CacheBypassed
from .runtime.events import ConstraintChanged as ConstraintChanged
from .runtime.events import ConstraintRejected as ConstraintRejected
from .runtime.events import Event as Event
from .runtime.events import MessageBus as MessageBus
from .runtime.events import ResourceAcquired as ResourceAcquired
from .runtime.events import ResourceReleased as ResourceReleased
from .runtime.events import RunFinished as RunFinished
from .runtime.events import RunStarted as RunStarted
from .runtime.events import StaticAnalysisWarning as StaticAnalysisWarning
from .runtime.events import TaskBlocked as TaskBlocked
from .runtime.events import TaskExecutionFinished as TaskExecutionFinished
from .runtime.events import TaskExecutionStarted as TaskExecutionStarted
from .runtime.events import TaskRetrying as TaskRetrying
from .runtime.events import TaskSkipped as TaskSkipped
from .runtime.remote import RemoteExecutor as RemoteExecutor
from .runtime.state import InMemoryStateBackend as InMemoryStateBackend
from .runtime.state import StateBackend as StateBackend
from .runtime.stats import EngineStats as EngineStats
from .spec.lazy import LazyResult as LazyResult
from .spec.lazy import MappedLazyResult as MappedLazyResult
from .spec.lazy import Router as Router
from .spec.lazy import pipeline as pipeline
from .spec.lazy import sequence as sequence
from .spec.markers import Env as Env
from .spec.markers import Param as Param
from .spec.markers import inject as inject
from .spec.messaging import TIMED_OUT as TIMED_OUT
from .spec.messaging import publish as publish
from .spec.messaging import recv as recv
from .spec.messaging import wait as wait
from .spec.policies import CachePolicy as CachePolicy
from .spec.policies import InMemoryCache as InMemoryCache
from .spec.policies import RetryPolicy as RetryPolicy
from .spec.resource import Resource as Resource
from .spec.resource import resource as resource
from .spec.task import Task as Task
from .spec.task import task as task

__version__ = "0.1.0"

__all__ = [
    "CacheBypassed", "CorruptEntryError", "FileCache", "RedisCache", "RedisStateBackend", "Serializer",
    "StoreError", "Unserialisable",
    "CachePolicy", "CascadeError", "Constraint", "ConstraintChanged", "ConstraintListener", "ConstraintManager", "ConstraintRejected", "CycleError", "DependencyMissingError",
    "Engine", "EngineStats", "Env", "Event", "ExecutionPlan", "Graph", "InMemoryCache",
    "InMemoryStateBackend", "LazyResult", "MappedLazyResult", "MessageBus", "NativeSolver",
    "Param", "ParamError", "Resource", "ResourceAcquired", "ResourceError", "ResourceReleased",
    "RetryPolicy", "RouteError", "Router", "RunFinished", "RunStarted", "StateBackend",
    "StaticAnalysisWarning", "Task", "TaskBlocked", "TaskExecutionFinished",
    "TaskExecutionStarted", "TaskRetrying", "TaskSkipped", "TelemetryPublisher", "build_graph", "dry_run", "inject",
    "pipeline", "resource", "run", "sequence", "task", "visualize",
    "Connector", "InMemoryConnector", "Message", "Subscription", "TIMED_OUT", "publish", "recv", "wait",
    "DaskExecutor", "RemoteExecutor",
]
