"""The rules of what step code may call and reach: the module policy, the address policy and
the installation's settings (read once, secrets then gone from the environment)."""

from __future__ import annotations

import ipaddress
import os
from typing import Any

import httpcore
import httpx
import pytest

from legato.engine.outbound import OutboundGuard, OutboundRefused
from legato.model.addresses import AddressPolicy, address_kind
from legato.model.definition_loading import load_definition
from legato.model.definition_problems import DefinitionError
from legato.model.step_modules import ModulePolicy, module_refusal
from legato.runtime import load_settings
from legato.settings import Settings, is_secret_variable


@pytest.mark.parametrize(
    "function",
    [
        "os:getenv",
        "os.path:expandvars",
        "subprocess:run",
        "builtins:eval",
        "sys:exit",
        "importlib:import_module",
        "shutil:rmtree",
        "socket:create_connection",
        "ctypes:CDLL",
        "pickle:loads",
        "marshal:loads",
        "runpy:run_path",
        "posix:system",
        "_posixsubprocess:fork_exec",
        "legato.settings:Settings",
        "legato:__version__",
    ],
)
def test_dangerous_modules_are_never_allowed_whatever_the_lists_say(function: str) -> None:
    module = function.partition(":")[0]
    policy = ModulePolicy((module, "os", "legato", "_posixsubprocess", "demo_steps"))
    assert policy.refusal(function) == f"module {module!r} is never allowed in steps"
    assert module_refusal(module) == f"module {module!r} is never allowed in steps"


def test_allowed_modules_are_prefixes_on_dotted_boundaries() -> None:
    policy = ModulePolicy(("acme.steps", "legato_examples"))
    assert policy.refusal("acme.steps:run") is None
    assert policy.refusal("acme.steps.media:transcode") is None
    assert policy.refusal("legato_examples.hello:greet") is None
    assert policy.refusal("acme.stepsevil:run") == (
        "module 'acme.stepsevil' is not a step module of this namespace "
        "(allowed: acme.steps, legato_examples); an installation admin can allow it"
    )
    assert policy.refusal("acme:run") is not None
    assert (
        policy.refusal("acme.steps:_helper")
        == "'acme.steps:_helper' is private (its name starts with '_')"
    )
    assert policy.refusal("acme.steps:__class__") is not None
    assert ModulePolicy().refusal("acme.steps:run") == (
        "module 'acme.steps' is not a step module of this namespace (allowed: none); "
        "an installation admin can allow it"
    )
    assert module_refusal("acme steps") == "invalid module name 'acme steps'"


def test_definitions_name_each_refused_function_with_path_and_line() -> None:
    source = """\
name: leak
steps:
  - id: a
    uses: python
    with: {function: "os:getenv", key: LEGATO_ADMIN_KEY}
  - id: g
    uses: group
    steps:
      - id: inner
        uses: python
        with:
          function: "${{ 'os:getenv' }}"
  - id: fine
    uses: python
    with: {function: "demo_steps:noop"}
"""
    policy = ModulePolicy(("demo_steps",))
    with pytest.raises(DefinitionError) as caught:
        load_definition(source, check_function=policy.refusal)
    assert [p.as_dict() for p in caught.value.problems] == [
        {
            "path": "steps[0].with.function",
            "line": 5,
            "message": "module 'os' is never allowed in steps",
            "code": "function_not_allowed",
        },
        {
            "path": "steps[1].steps[0].with.function",
            "line": 12,
            "message": "the function must be written out (not an expression) to be checked",
            "code": "function_not_allowed",
        },
    ]
    good = "name: ok\nsteps:\n  - {id: fine, uses: python, with: {function: demo_steps:noop}}\n"
    assert load_definition(good, check_function=policy.refusal).name == "ok"


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("fec0::1", "site-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "private"),
        ("100.64.0.1", "non-public"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::7f00:1", "loopback"),
        ("2002:7f00:1::", "loopback"),
        ("93.184.215.14", None),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", None),
        ("::ffff:93.184.215.14", None),
    ],
)
def test_address_kinds(address: str, kind: str | None) -> None:
    assert address_kind(ipaddress.ip_address(address)) == kind


def test_the_installation_may_allow_private_networks() -> None:
    loopback = ipaddress.ip_address("127.0.0.1")
    mapped = ipaddress.ip_address("::ffff:127.0.0.1")
    assert AddressPolicy().refusal(loopback) == (
        "127.0.0.1 is a loopback address, which outbound requests may not reach"
    )
    assert AddressPolicy(allow_private=True).refusal(loopback) is None
    narrow = AddressPolicy.of(False, [ipaddress.ip_network("127.0.0.1/32")])
    assert narrow.refusal(loopback) is None
    assert narrow.refusal(mapped) is None
    assert narrow.refusal(ipaddress.ip_address("127.0.0.2")) is not None
    assert narrow.refusal(ipaddress.ip_address("::1")) is not None


def test_settings_are_read_once_and_secrets_leave_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEGATO_ADMIN_KEY", "lg_secret_admin_key_0123")
    monkeypatch.setenv("LEGATO_DATABASE_URL", "postgresql://legato:pw@db/legato")
    monkeypatch.setenv("LEGATO_WEBHOOK_TOKEN", "t")
    monkeypatch.setenv("PGPASSWORD", "pw")
    monkeypatch.setenv("LEGATO_STEP_MODULES", "acme.steps, legato_examples")
    monkeypatch.setenv("LEGATO_ALLOWED_CIDRS", "10.0.0.0/8,fd00::/8")
    monkeypatch.setenv("LEGATO_WORKER_NAMESPACES", "a,b")
    monkeypatch.setenv("LEGATO_LEASE_SECONDS", "12")
    settings = load_settings()
    assert settings.admin_key is not None
    assert settings.admin_key.get_secret_value() == "lg_secret_admin_key_0123"
    assert "lg_secret" not in repr(settings)
    assert settings.step_modules == ("acme.steps", "legato_examples")
    assert settings.allowed_cidrs == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("fd00::/8"),
    )
    assert settings.worker_namespaces == ("a", "b")
    assert settings.lease_seconds == 12
    for name in ["LEGATO_ADMIN_KEY", "LEGATO_DATABASE_URL", "LEGATO_WEBHOOK_TOKEN", "PGPASSWORD"]:
        assert name not in os.environ
    assert os.environ["LEGATO_STEP_MODULES"] == "acme.steps, legato_examples"
    assert settings.without_admin_key().admin_key is None
    assert not is_secret_variable("LEGATO_LOG_LEVEL")
    assert is_secret_variable("LEGATO_API_KEY")


def test_a_bad_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEGATO_ALLOWED_CIDRS", "10.0.0.1/8")  # host bits set: a typo
    with pytest.raises(ValueError, match="allowed_cidrs"):
        Settings()


async def test_the_transport_connects_to_the_address_it_checked() -> None:
    connected: list[tuple[str, int]] = []

    class Recording(httpcore.AsyncMockBackend):
        async def connect_tcp(
            self, host: str, port: int, *args: Any, **kwargs: Any
        ) -> httpcore.AsyncNetworkStream:
            connected.append((host, port))
            return await super().connect_tcp(host, port, *args, **kwargs)

    answers = [b"HTTP/1.1 204 No Content\r\n\r\n"] * 2
    loopback = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    guard = OutboundGuard(AddressPolicy.of(False, loopback))
    async with httpx.AsyncClient(transport=guard.transport(Recording(answers))) as client:
        assert (await client.get("http://localhost:8080/x")).status_code == 204
        assert (await client.get("http://127.0.0.1:8081/y")).status_code == 204
        with pytest.raises(OutboundRefused) as refused:
            await client.get("http://10.0.0.2:8082/z")  # outside the networks: not connected
    assert refused.value.message == (
        "destination 10.0.0.2 is not allowed: 10.0.0.2 is a private address, which outbound "
        "requests may not reach"
    )
    assert connected[0][0] in ("127.0.0.1", "::1")  # the name's checked address, not the name
    assert connected == [(connected[0][0], 8080), ("127.0.0.1", 8081)]


def test_installed_packages_register_step_modules_through_entry_points(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from importlib.metadata import EntryPoint

    from legato.engine import kinds
    from legato.engine import step_modules as installation

    registered = [
        EntryPoint(name="acme", value="acme.steps", group="legato.steps"),
        EntryPoint(name="transcode", value="acme.kinds:run", group="legato.steps"),
        EntryPoint(name="evil", value="subprocess", group="legato.steps"),
    ]

    def entry_points(group: str, name: str | None = None) -> list[EntryPoint]:
        assert group == "legato.steps"
        return [ep for ep in registered if name is None or ep.name == name]

    monkeypatch.setattr(installation, "entry_points", entry_points)
    monkeypatch.setattr(kinds, "entry_points", entry_points)
    assert installation.registered_modules() == ("acme.steps", "subprocess")
    modules = installation.StepModules.of_installation(["legato_examples"])
    assert modules.installation.prefixes == ("acme.steps", "legato_examples")  # never: dropped
    assert modules.policy(["tenant_steps"]).refusal("tenant_steps:whoami") is None
    assert modules.installation.refusal("tenant_steps:whoami") is not None
    assert kinds.runner_for("acme") is None  # a step module is not a step kind
