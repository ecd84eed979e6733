"""The field server's session gate against a hostile client: channels weaker than configured,
passwords in clear, password guessing, and the audit trail of every login and refusal.

Real simulators (CIGRE MV, step mode) on 127.0.0.1 with ephemeral ports; the hostile client is
asyncua's low-level ``UaClient`` driven by hand, as a tester would.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterator

import pytest
from asyncua import ua
from asyncua.client.ua_client import UaClient

import gridctl.field.users as security_module
from gridctl.cli import main
from gridctl.field.security import (
    AnonymousPolicy,
    ClientSecurity,
    Role,
    SecurityMode,
    ServerSecurity,
    UserAccount,
    UserStore,
    hash_password,
)
from gridctl.field_client import FieldClient, FieldConnectionError
from hil_sim.drill_client import DrillClient, SimulatorCallError
from hil_sim.server import SimServer
from network_models import load_model

OPERATOR = ("op", "op-secret")
VIEWER = ("view", "view-secret")
MODEL = "cigre_mv"
SETPOINT = ("bess_battery_1", "p_set_mw")


def _users() -> UserStore:
    # few PBKDF2 iterations: these hashes only guard a test server
    return UserStore.of(
        UserAccount(name=OPERATOR[0], role=Role.OPERATOR,
                    password_hash=hash_password(OPERATOR[1], iterations=1000)),
        UserAccount(name=VIEWER[0], role=Role.VIEWER,
                    password_hash=hash_password(VIEWER[1], iterations=1000)),
    )


@contextlib.asynccontextmanager
async def _serving(pki, *modes: SecurityMode, **settings) -> AsyncIterator[SimServer]:
    security = ServerSecurity(modes=modes, pki_dir=pki, users=_users(),
                              anonymous=AnonymousPolicy.VIEWER, **settings)
    server = SimServer(load_model(MODEL), port=0, step_mode=True, start="2026-07-15 12:00",
                       security=security)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def _client(server: SimServer, user: tuple[str, str] | None,
            mode: SecurityMode = SecurityMode.SIGN_ENCRYPT) -> FieldClient:
    security = ClientSecurity(mode=mode, pki_dir=server.security.pki_dir,
                              username=user[0] if user else None,
                              password=user[1] if user else None)
    return FieldClient(server.endpoint, server.simulator.contract, security=security,
                       timeout_s=30.0)


async def _raw_none_channel(endpoint: str) -> UaClient:
    """A client that opens a None secure channel by hand, whatever endpoints the server offers."""
    host, port = endpoint.removeprefix("opc.tcp://").rsplit(":", 1)
    raw = UaClient(timeout=30)
    await raw.connect_socket(host, int(port))
    await raw.send_hello(endpoint)
    await raw.open_secure_channel(ua.OpenSecureChannelParameters(
        ClientProtocolVersion=0, RequestType=ua.SecurityTokenRequestType.Issue,
        SecurityMode=ua.MessageSecurityMode.None_, RequestedLifetime=600_000, ClientNonce=b""))
    return raw


def _clear_password_token(user: tuple[str, str]) -> ua.ActivateSessionParameters:
    params = ua.ActivateSessionParameters()
    params.UserIdentityToken = ua.UserNameIdentityToken(
        PolicyId="username", UserName=user[0], Password=user[1].encode())
    return params


async def _create_session(raw: UaClient, endpoint: str) -> ua.CreateSessionResult:
    return await raw.create_session(ua.CreateSessionParameters(
        ClientDescription=ua.ApplicationDescription(
            ApplicationUri="urn:tester:raw", ApplicationType=ua.ApplicationType.Client),
        EndpointUrl=endpoint, SessionName="raw", ClientNonce=b"n" * 32,
        RequestedSessionTimeout=60_000, MaxResponseMessageSize=0))


def _node(server: SimServer, key: tuple[str, str]) -> ua.NodeId:
    point = server.simulator.contract.point(*key)
    return ua.NodeId(point.node_identifier, server._space.namespace_index)


@pytest.fixture
def password_checks(monkeypatch) -> list[str]:
    """Every PBKDF2 verification the server makes (the encoded hash it checked against)."""
    calls: list[str] = []
    verify = security_module.verify_password

    def counting(password: str, encoded: str) -> bool:
        calls.append(encoded)
        return verify(password, encoded)

    monkeypatch.setattr(security_module, "verify_password", counting)
    return calls


class _AuditLines(logging.Handler):
    """The simulator's audit lines, as they come."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.lines: list[str] = []
        self.changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        self.changed.set()

    def matching(self, *words: str) -> list[str]:
        return [line for line in self.lines if all(w in line for w in words)]

    async def wait_for(self, count: int, *words: str, timeout_s: float = 60.0) -> list[str]:
        async with asyncio.timeout(timeout_s):
            while len(self.matching(*words)) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.matching(*words)


@pytest.fixture
def audit_lines() -> _AuditLines:
    handler = _AuditLines()
    logger = logging.getLogger("hil_sim.audit")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


# --- a channel weaker than configured ----------------------------------------------------------


async def test_a_raw_none_channel_client_gets_no_session_on_a_sign_encrypt_simulator(
        tmp_path, password_checks, audit_lines):
    async with _serving(tmp_path / "pki", SecurityMode.SIGN_ENCRYPT) as server:
        raw = await _raw_none_channel(server.endpoint)
        try:
            with pytest.raises(ua.UaStatusCodeError) as created:
                await _create_session(raw, server.endpoint)
            assert created.value.code == ua.StatusCodes.BadSecurityModeInsufficient
            with pytest.raises(ua.UaStatusCodeError) as activated:
                await raw.activate_session(_clear_password_token(OPERATOR))
            assert activated.value.code == ua.StatusCodes.BadSecurityModeInsufficient
            # discovery still works on a None channel: that is what it is for
            endpoints = await raw.get_endpoints(ua.GetEndpointsParameters(
                EndpointUrl=server.endpoint))
            assert {e.SecurityMode for e in endpoints} == {
                ua.MessageSecurityMode.SignAndEncrypt}
        finally:
            raw.disconnect_socket()
    assert password_checks == []  # the operator's password, sent in clear, was never judged
    (refused,) = audit_lines.matching("login refused", "user=op", "channel=None")
    assert "BadSecurityModeInsufficient" in refused
    assert audit_lines.matching("session refused", "what=CreateSession", "channel=None")


async def test_a_raw_none_channel_client_can_neither_take_over_nor_write_into_a_secure_session(
        tmp_path, audit_lines):
    async with _serving(tmp_path / "pki", SecurityMode.SIGN_ENCRYPT) as server, \
            _client(server, OPERATOR) as controller:
        token = controller.ua_client.uaclient.session.authentication_token
        raw = await _raw_none_channel(server.endpoint)
        try:
            raw.protocol.authentication_token = token  # the operator's session, by its token
            with pytest.raises(ua.UaStatusCodeError) as activated:
                await raw.activate_session(_clear_password_token(OPERATOR))
            assert activated.value.code == ua.StatusCodes.BadSecurityModeInsufficient
            with pytest.raises(ua.UaStatusCodeError) as written:
                await raw.write_attributes(
                    [_node(server, SETPOINT)],
                    [ua.DataValue(ua.Variant(0.2, ua.VariantType.Double))],
                    ua.AttributeIds.Value)
            assert written.value.code == ua.StatusCodes.BadSecurityModeInsufficient
        finally:
            raw.disconnect_socket()
        assert server.simulator.setpoint(*SETPOINT) != 0.2
        # the controller's own session is untouched
        (result,) = await controller.write({SETPOINT: 0.1})
        assert result.good
        assert server.simulator.setpoint(*SETPOINT) == pytest.approx(0.1)
    assert audit_lines.matching("session refused", "what=Write", "channel=None")


async def test_a_secure_session_is_not_taken_over_from_an_allowed_none_channel(
        tmp_path, audit_lines):
    # None is offered here (anonymous reading), yet the operator's SignAndEncrypt session
    # cannot be activated again on a None channel, even by its token
    async with _serving(tmp_path / "pki", SecurityMode.NONE,
                        SecurityMode.SIGN_ENCRYPT) as server, \
            _client(server, OPERATOR) as controller:
        token = controller.ua_client.uaclient.session.authentication_token
        raw = await _raw_none_channel(server.endpoint)
        try:
            raw.protocol.authentication_token = token
            anonymous = ua.ActivateSessionParameters()
            anonymous.UserIdentityToken = ua.AnonymousIdentityToken(PolicyId="anonymous")
            with pytest.raises(ua.UaStatusCodeError) as activated:
                await raw.activate_session(anonymous)
            assert activated.value.code == ua.StatusCodes.BadSessionIdInvalid
        finally:
            raw.disconnect_socket()
        (result,) = await controller.write({SETPOINT: 0.15})  # still the operator's session
        assert result.good
    assert audit_lines.matching("login refused", "created on another channel")


async def test_a_password_on_a_none_endpoint_is_refused_unless_allowed(
        tmp_path, password_checks, audit_lines):
    async with _serving(tmp_path / "pki", SecurityMode.NONE) as server:
        with pytest.raises(FieldConnectionError, match="BadSecurityModeInsufficient"):
            async with _client(server, OPERATOR, SecurityMode.NONE):
                pass
        assert password_checks == []
        async with _client(server, None, SecurityMode.NONE) as anonymous:  # reading is fine
            assert (await anonymous.read([("pv_3", "p_mw")]))[0].good
    assert audit_lines.matching("login refused", "user=op", "sent in clear on a None channel")
    async with _serving(tmp_path / "pki", SecurityMode.NONE,
                        allow_insecure_passwords=True) as server, \
            _client(server, OPERATOR, SecurityMode.NONE) as operator:
        (result,) = await operator.write({SETPOINT: 0.05})
        assert result.good


async def test_a_password_sent_in_clear_on_a_sign_channel_is_refused(tmp_path, password_checks):
    async with _serving(tmp_path / "pki", SecurityMode.SIGN) as server:
        client = _client(server, OPERATOR, SecurityMode.SIGN)
        # a client that ignores the endpoint's request to encrypt the password for the server
        client.ua_client.server_policy = lambda token_type: ua.UserTokenPolicy(
            PolicyId="username", TokenType=token_type, SecurityPolicyUri=None)
        with pytest.raises(FieldConnectionError, match="BadSecurityModeInsufficient"):
            await client.connect()
        assert password_checks == []
        async with _client(server, OPERATOR, SecurityMode.SIGN) as operator:  # encrypted: fine
            (result,) = await operator.write({SETPOINT: 0.05})
            assert result.good


# --- password guessing -------------------------------------------------------------------------


async def test_twenty_wrong_passwords_take_ten_seconds_lock_the_account_and_are_each_audited(
        tmp_path, password_checks, audit_lines):
    async with _serving(tmp_path / "pki", SecurityMode.SIGN_ENCRYPT) as server, \
            _client(server, VIEWER) as bystander:
        answered: list[float] = []

        async def guess_twenty() -> None:
            for i in range(20):
                with pytest.raises(FieldConnectionError, match="BadUserAccessDenied"):
                    async with _client(server, (OPERATOR[0], f"guess-{i}")):
                        pass
                answered.append(time.monotonic())

        started = time.monotonic()
        guessing = asyncio.create_task(guess_twenty())
        # while the fifth refusal is held back (8 s), the server answers everyone else
        await audit_lines.wait_for(5, "login refused", "user=op", "wrong password")
        assert len(answered) == 4
        assert (await bystander.read([("pv_3", "p_mw")]))[0].good
        assert len(answered) == 4, "a read waited for a held-back login"
        await guessing
        elapsed_s = time.monotonic() - started
        assert elapsed_s >= 10.0
        refused = audit_lines.matching("login refused", "user=op", "from=127.0.0.1:")
        assert len(refused) == 20
        assert len([r for r in refused if "wrong password" in r]) == 5
        assert len([r for r in refused if "account locked" in r]) == 15
        operators_hash = server.security.users.users[OPERATOR[0]].password_hash
        assert password_checks.count(operators_hash) == 5  # no hash while the account is locked

        with pytest.raises(FieldConnectionError, match="BadUserAccessDenied"):
            async with _client(server, OPERATOR):  # the right password, while locked
                pass
        assert password_checks.count(operators_hash) == 5
        assert "account locked" in audit_lines.matching("login refused", "user=op")[-1]
        async with _client(server, VIEWER):  # another account from the same address
            pass


# --- the audit trail -----------------------------------------------------------------------------


class _Events:
    def __init__(self) -> None:
        self.received: asyncio.Queue = asyncio.Queue()

    async def event_notification(self, event) -> None:
        await self.received.put(event)

    async def datachange_notification(self, node, val, data) -> None:
        pass

    async def status_change_notification(self, status) -> None:
        pass


async def _next_event(events: _Events, predicate, timeout_s: float = 30.0):
    async with asyncio.timeout(timeout_s):
        while True:
            event = await events.received.get()
            if predicate(event):
                return event


async def test_a_viewers_refused_write_is_an_audit_event_an_operator_sees(tmp_path, audit_lines):
    async with _serving(tmp_path / "pki", SecurityMode.SIGN_ENCRYPT) as server, \
            _client(server, OPERATOR) as operator, _client(server, VIEWER) as viewer, \
            _client(server, None) as anonymous:
        events = _Events()
        subscription = await operator.ua_client.create_subscription(50, events)
        await subscription.subscribe_events(operator.ua_client.nodes.server,
                                            ua.ObjectIds.AuditEventType)
        before = server.simulator.setpoint(*SETPOINT)
        for client in (viewer, anonymous):
            (result,) = await client.write({SETPOINT: 0.3})
            assert result.status_name == "BadUserAccessDenied"
        assert server.simulator.setpoint(*SETPOINT) == before
        seen = await _next_event(events, lambda e: e.ClientUserId == "view")
        assert seen.Status is False
        assert "write refused" in seen.Message.Text
        assert "bess_battery_1.p_set_mw" in seen.Message.Text
        assert seen.EventType == ua.NodeId(ua.ObjectIds.AuditWriteUpdateEventType)
        assert await _next_event(events, lambda e: e.ClientUserId == "anonymous")
        await subscription.delete()
    (line,) = audit_lines.matching("write refused", "user=view", "what=bess_battery_1.p_set_mw")
    assert "from=127.0.0.1:" in line and "BadUserAccessDenied" in line
    assert "channel=Basic256Sha256/SignAndEncrypt" in line
    assert audit_lines.matching("write refused", "user=anonymous", "what=bess_battery_1.p_set_mw")


async def test_every_login_and_every_refused_write_and_call_is_audited(tmp_path, audit_lines):
    async with _serving(tmp_path / "pki", SecurityMode.SIGN_ENCRYPT) as server:
        async with _client(server, OPERATOR) as operator, _client(server, VIEWER) as viewer:
            results = await operator.write_values({SETPOINT: 1e6, ("pv_3", "p_mw"): 0.1})
            assert {k: r.status_name for k, r in results.items()} == {
                SETPOINT: "BadOutOfRange", ("pv_3", "p_mw"): "BadNotWritable"}
            with pytest.raises(SimulatorCallError):
                await DrillClient(viewer).call("FaultLine", "line_1")
            with pytest.raises(SimulatorCallError):
                await DrillClient(operator).call("FaultLine", "no_such_line")
        with pytest.raises(FieldConnectionError):
            async with _client(server, (VIEWER[0], "wrong")):
                pass
    assert audit_lines.matching("login user=op", "Good: operator")
    assert audit_lines.matching("login user=view", "Good: viewer")
    (out_of_range,) = audit_lines.matching("write refused", "user=op",
                                           "what=bess_battery_1.p_set_mw")
    assert "BadOutOfRange" in out_of_range and "1000000.0" in out_of_range
    assert audit_lines.matching("write refused", "user=op", "what=pv_3.p_mw", "BadNotWritable")
    assert audit_lines.matching("call refused", "user=view", "what=Simulator.FaultLine",
                                "BadUserAccessDenied")
    assert audit_lines.matching("call refused", "user=op", "what=Simulator.FaultLine",
                                "BadInvalidArgument", "no_such_line")
    assert audit_lines.matching("login refused", "user=view", "wrong password")


# --- the controller's own client -----------------------------------------------------------------


async def test_the_controllers_secure_client_still_reads_writes_and_follows_the_clock(
        tmp_path, audit_lines):
    async with _serving(tmp_path / "pki", SecurityMode.SIGN, SecurityMode.SIGN_ENCRYPT) as server:
        for mode in (SecurityMode.SIGN_ENCRYPT, SecurityMode.SIGN):
            async with _client(server, OPERATOR, mode) as controller:
                ticks: asyncio.Queue = asyncio.Queue()
                subscription = await DrillClient(controller).subscribe_clock(ticks.put,
                                                                             period_ms=20)
                await asyncio.wait_for(ticks.get(), 30)
                (result,) = await controller.write({SETPOINT: 0.25})
                assert result.good
                assert await DrillClient(controller).call("Step", 1) >= 1
                await asyncio.wait_for(ticks.get(), 30)
                assert (await controller.read([SETPOINT]))[0].value == pytest.approx(0.25)
                await subscription.close()
    assert len(audit_lines.matching("login user=op", "Good: operator")) == 2
    assert not audit_lines.matching("refused")


# --- asyncua's own warnings -----------------------------------------------------------------------


async def test_asyncuas_security_warnings_are_shown_by_the_sim_commands(tmp_path, caplog):
    assert main(["sim", "trust", str(tmp_path / "none.pem"), "--pki", str(tmp_path)]) == 2
    assert logging.getLogger("asyncua").getEffectiveLevel() <= logging.WARNING
    async with _serving(tmp_path / "pki", SecurityMode.NONE,
                        allow_insecure_passwords=True) as server:
        with caplog.at_level(logging.WARNING):
            async with _client(server, OPERATOR, SecurityMode.NONE):
                pass
    messages = [(r.name, r.getMessage()) for r in caplog.records]
    assert ("asyncua.client.client", "Sending plain-text password") in messages
    assert not [m for n, m in messages if m.startswith("Requested session timeout")]


# --- what the gate relies on in asyncua ---------------------------------------------------------


def test_the_asyncua_internals_the_gate_relies_on_are_there():
    """asyncua is pinned to 2.1.x; this names what a new version must still have."""
    from asyncua.server import binary_server_asyncio, internal_server, internal_session
    from asyncua.server.uaprocessor import UaProcessor

    from gridctl.field.session_gate import GatedUaProcessor

    # each connection's processor is made from the module's name at connection time
    assert "UaProcessor(self.iserver" in inspect.getsource(
        binary_server_asyncio.OPCUAProtocol.connection_made)
    assert issubclass(GatedUaProcessor, UaProcessor)
    assert list(inspect.signature(UaProcessor._process_message).parameters) == [
        "self", "typeid", "requesthdr", "seqhdr", "body"]
    # the user manager is asked synchronously, in the request's task
    activate = internal_session.InternalSession.activate_session
    assert not inspect.iscoroutinefunction(activate)
    assert "self.iserver.user_manager.get_user(" in inspect.getsource(activate)
    for name in ("decrypt_user_token", "lookup_external_session"):
        assert callable(getattr(internal_server.InternalServer, name))
    # the policy a channel runs under, from which the gate reads its policy and mode
    assert "self._connection = SecureConnection(" in inspect.getsource(UaProcessor.__init__)
