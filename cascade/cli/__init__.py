"""The ``cascade`` command line (``cascade bench``, ``cascade dry-run``); see :mod:`cascade.cli.main`."""
