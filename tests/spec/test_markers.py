"""cs.Param, cs.Env, cs.Router and cs.inject as declared values."""

from __future__ import annotations

import pytest

import cascade as cs


@cs.task
def echo(x):
    return x


@cs.task
def pick():
    return "b"


def test_param_value_from_run_params():
    assert cs.run(echo(cs.Param("greeting")), params={"greeting": "hi"}) == "hi"


def test_param_default_used_when_missing():
    assert cs.run(echo(cs.Param("n", default=7))) == 7


def test_param_type_converts_value():
    assert cs.run(echo(cs.Param("n", type=int)), params={"n": "41"}) == 41


def test_param_inside_containers():
    assert cs.run(echo({"k": [cs.Param("a"), 2]}), params={"a": 1}) == {"k": [1, 2]}


def test_param_bad_type_is_param_error_naming_the_param():
    with pytest.raises(cs.ParamError, match="'n'"):
        cs.run(echo(cs.Param("n", type=int)), params={"n": "not a number"})


def test_env_reads_environment_at_run_time(monkeypatch):
    target = echo(cs.Env("CASCADE_TEST_ENV_VALUE"))
    monkeypatch.setenv("CASCADE_TEST_ENV_VALUE", "first")
    assert cs.run(target) == "first"
    monkeypatch.setenv("CASCADE_TEST_ENV_VALUE", "second")
    assert cs.run(target) == "second"


def test_env_default_and_missing(monkeypatch):
    monkeypatch.delenv("CASCADE_TEST_ENV_UNSET", raising=False)
    assert cs.run(echo(cs.Env("CASCADE_TEST_ENV_UNSET", default="dflt"))) == "dflt"
    with pytest.raises(cs.ParamError, match="CASCADE_TEST_ENV_UNSET"):
        cs.run(echo(cs.Env("CASCADE_TEST_ENV_UNSET")))


def test_router_declaration():
    a, b = echo("A"), echo("B")
    sel = pick()
    router = cs.Router(sel, {"a": a, "b": b})
    assert router.selector is sel
    assert router.routes == {"a": a, "b": b}
    assert cs.run(echo(router)) == "B"


def test_router_validation():
    with pytest.raises(TypeError):
        cs.Router("not lazy", {"a": echo(1)})
    with pytest.raises(TypeError):
        cs.Router(pick(), {})
    with pytest.raises(TypeError):
        cs.Router(pick(), {"a": 1})


def test_inject_marker_and_validation():
    marker = cs.inject("db")
    assert marker.name == "db"
    with pytest.raises(TypeError):
        cs.inject("")
