"""Adapters: the parts of Cascade that talk to the outside (connectors, stores, remote executors).

Each adapter implements a small protocol; optional dependencies are imported only by the adapter
that needs them, so ``import cascade`` never needs a broker, Redis or Dask.
"""
