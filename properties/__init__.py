"""Cascade's property suite (Hypothesis).

Run from the repo root::

    python -m pytest properties -p no:cacheprovider                      # ci profile (default)
    HYPOTHESIS_PROFILE=dev python -m pytest properties                    # quick, random
    HYPOTHESIS_PROFILE=nightly python -m pytest properties               # many examples + flat memory

Modules: ``model`` (descriptions + reference interpreter), ``strategies``, ``builder`` (descriptions
to real tasks), ``profiles``; properties in ``test_*.py``; ``test_suite_catches_bugs`` injects engine
bugs with monkeypatch and checks that the properties find them.
"""
