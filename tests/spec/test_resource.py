"""@cs.resource declarations and cs.inject as a default and as an argument value."""

from __future__ import annotations

import pytest

import cascade as cs


def test_resource_decorator_defaults():
    @cs.resource
    def conn():
        yield "c"

    assert isinstance(conn, cs.Resource)
    assert conn.name == "conn"
    assert conn.scope == "run"
    assert conn.is_async is False


def test_resource_decorator_options_and_async():
    @cs.resource(name="db", scope="task")
    async def make_db():
        yield "d"

    assert make_db.name == "db"
    assert make_db.scope == "task"
    assert make_db.is_async is True


def test_resource_rejects_bad_scope_and_non_generator():
    with pytest.raises(ValueError, match="scope"):
        cs.resource(scope="forever")
    with pytest.raises(TypeError):
        cs.resource(lambda: 1)


def test_engine_register_rejects_non_resource():
    with pytest.raises(TypeError):
        cs.Engine().register(lambda: 1)


@pytest.mark.asyncio
async def test_inject_as_parameter_default():
    @cs.resource(name="token")
    def token():
        yield "secret"

    @cs.task
    def use(x, tok=cs.inject("token")):
        return f"{x}:{tok}"

    engine = cs.Engine(resources=[token])
    assert await engine.run(use(1)) == "1:secret"


@pytest.mark.asyncio
async def test_inject_inside_argument_values():
    @cs.resource(name="cfg")
    async def cfg():
        yield {"port": 80}

    @cs.task
    def use(options):
        return options["conf"]["port"], options["list"][1]

    engine = cs.Engine()
    engine.register(cfg)
    target = use({"conf": cs.inject("cfg"), "list": [0, cs.inject("cfg")]})
    assert await engine.run(target) == (80, {"port": 80})


def test_resource_lists_the_resources_it_injects():
    @cs.resource(name="db")
    def db(config=cs.inject("config"), retries=3):
        yield (config, retries)

    assert db.injected == (("config", "config"),)


def test_resource_parameter_without_default_is_a_clear_error():
    with pytest.raises(TypeError, match="resource 'db' parameter 'url' has no default"):
        @cs.resource(name="db")
        def db(url):
            yield url
