"""The simulated field over OPC UA: the real server and the real client on 127.0.0.1.

One Jiuke simulator in step mode serves the module (ephemeral port); every test uses devices of
its own and restores what it switched, so the order does not matter.
"""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio
from asyncua import ua

from gridctl.field.security import (
    AnonymousPolicy,
    ClientSecurity,
    Pki,
    Role,
    SecurityMode,
    ServerSecurity,
    UserAccount,
    UserStore,
    hash_password,
    trust_certificate,
)
from gridctl.field_client import (
    FieldClient,
    FieldConnectionError,
    PointReading,
)
from hil_sim.drill_client import DrillClient, SimulatorCallError
from hil_sim.server import SimServer

pytestmark = pytest.mark.asyncio(loop_scope="module")

OPERATOR = ("op", "op-secret")
VIEWER = ("view", "view-secret")


def _users() -> UserStore:
    # few PBKDF2 iterations: these hashes only guard a test server
    return UserStore.of(
        UserAccount(name=OPERATOR[0], role=Role.OPERATOR,
                    password_hash=hash_password(OPERATOR[1], iterations=1000)),
        UserAccount(name=VIEWER[0], role=Role.VIEWER,
                    password_hash=hash_password(VIEWER[1], iterations=1000)),
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def field(jiuke, tmp_path_factory):
    pki = tmp_path_factory.mktemp("server-pki")
    # operators log in on the None endpoint too: a loopback test server allows it explicitly
    security = ServerSecurity(
        modes=(SecurityMode.NONE, SecurityMode.SIGN, SecurityMode.SIGN_ENCRYPT), pki_dir=pki,
        users=_users(), anonymous=AnonymousPolicy.VIEWER, allow_insecure_passwords=True)
    server = SimServer(jiuke, host="127.0.0.1", port=0, step_mode=True,
                       start="2026-07-15 12:00", security=security)
    await server.start()
    yield server
    await server.stop()


def _client(field: SimServer, user: tuple[str, str] | None = OPERATOR,
            mode: SecurityMode = SecurityMode.NONE, pki=None) -> FieldClient:
    security = ClientSecurity(mode=mode, pki_dir=pki or field.security.pki_dir,
                              username=user[0] if user else None,
                              password=user[1] if user else None)
    return FieldClient(field.endpoint, field.simulator.contract, security=security,
                       timeout_s=30.0)


async def _value(client: FieldClient, device: str, point: str):
    (reading,) = await client.read([(device, point)])
    assert reading.good, reading.status_name
    return reading.value


async def test_an_operator_write_within_limits_is_applied(field):
    async with _client(field) as client:
        (result,) = await client.write({("BESS_2", "p_set_mw"): 0.9})
        assert result.good
        await DrillClient(client).call("Step", 1)
        assert await _value(client, "BESS_2", "p_mw") == pytest.approx(0.9)
        assert await _value(client, "BESS_2", "p_set_mw") == pytest.approx(0.9)


async def test_a_viewer_write_is_refused_and_changes_nothing(field):
    async with _client(field, VIEWER) as viewer, _client(field, None) as anonymous:
        for client in (viewer, anonymous):
            (result,) = await client.write({("BESS_3", "p_set_mw"): 1.5})
            assert result.status_name == "BadUserAccessDenied"
            assert await _value(client, "BESS_3", "p_set_mw") == 0.0
            assert await _value(client, "BESS_3", "soc_frac") > 0  # reading is allowed
    assert field.simulator.setpoint("BESS_3", "p_set_mw") == 0.0
    assert field.simulator.bess["BESS_3"].watchdog.last_write is None


async def test_an_out_of_range_write_is_refused_and_changes_nothing(field):
    async with _client(field) as client:
        results = await client.write_values({
            ("EV_L6_5", "c1.p_set_kw"): 7.5,  # the connector is rated 7 kW
            ("EV_L6_5", "c2.p_set_kw"): 5.0,
            ("EV_L6_5", "p_site_limit_kw"): float("nan"),
            ("BESS_1", "soc_frac"): 0.9,
            ("FB_FD_L6_0", "close_cmd"): 1.0,
        })
        assert {k[1]: r.status_name for k, r in results.items()} == {
            "c1.p_set_kw": "BadOutOfRange", "c2.p_set_kw": "Good",
            "p_site_limit_kw": "BadOutOfRange", "soc_frac": "BadNotWritable",
            "close_cmd": "BadTypeMismatch"}
        assert await _value(client, "EV_L6_5", "c1.p_set_kw") == 3.5  # its safe default
        assert await _value(client, "EV_L6_5", "c2.p_set_kw") == 5.0
        assert await _value(client, "EV_L6_5", "p_site_limit_kw") == 210.0
        assert await _value(client, "FB_FD_L6_0", "closed") is True


async def test_an_operator_write_of_connect_cmd_false_disconnects_the_load_at_the_next_step(
        field):
    async with _client(field) as client:
        (result,) = await client.write({("LD_L5_2", "connect_cmd"): False})
        assert result.good
        assert await _value(client, "LD_L5_2", "connected") is True  # until the next tick
        await DrillClient(client).call("Step", 1)
        assert await _value(client, "LD_L5_2", "connected") is False
        assert await _value(client, "LD_L5_2", "energised") is False
        assert await _value(client, "LD_L5_2", "p_mw") == 0.0
        assert "LD_L5_2" in (await DrillClient(client).status())["unsupplied_loads"]
        # the customer back on supply: later tests see every load connected
        await client.write({("LD_L5_2", "connect_cmd"): True})
        await DrillClient(client).call("Step", 1)


async def test_a_viewer_cannot_disconnect_a_load(field):
    async with _client(field, VIEWER) as viewer, _client(field) as operator:
        (result,) = await viewer.write({("LD_L5_3", "connect_cmd"): False})
        assert result.status_name == "BadUserAccessDenied"
        assert await _value(viewer, "LD_L5_3", "connect_cmd") is True
        await DrillClient(operator).call("Step", 1)
        assert await _value(viewer, "LD_L5_3", "connected") is True
        assert await _value(viewer, "LD_L5_3", "energised") is True
    assert field.simulator.setpoint("LD_L5_3", "connect_cmd") is True


async def test_a_device_whose_heartbeat_stops_falls_back_to_its_safe_default(field):
    timeout_ticks = int(field.simulator.config.heartbeat_timeout_s
                        // field.simulator.config.tick_s)
    async with _client(field) as client:
        await client.write({("BESS_1", "p_set_mw"): -1.2, ("PV_L7_1", "p_limit_mw"): 0.01})
        await DrillClient(client).call("Step", timeout_ticks)
        assert await _value(client, "BESS_1", "p_mw") == pytest.approx(-1.2)
        assert await _value(client, "PV_L7_1", "p_mw") == pytest.approx(0.01)
        await DrillClient(client).call("Step", 1)
        assert await _value(client, "BESS_1", "p_mw") == 0.0
        assert await _value(client, "PV_L7_1", "p_mw") == pytest.approx(
            await _value(client, "PV_L7_1", "p_avail_mw"))
        assert {"BESS_1", "PV_L7_1"} <= set((await DrillClient(client).status())[
            "fallback_devices"])


async def test_a_ring_cable_fault_trips_the_feeder_breaker_and_sets_the_indicators(field):
    l8_indicators = [d.id for d in field.simulator.model.registry.fault_indicators
                     if d.line.startswith("FD_L8_")]
    async with _client(field) as client:
        await DrillClient(client).call("FaultLine", "FD_L8_1")
        assert await _value(client, "FB_FD_L8_0", "tripped") is True
        assert await _value(client, "FB_FD_L8_0", "closed") is False
        shown = await client.read_values([(fi, "fault_detected") for fi in l8_indicators])
        assert {k[0] for k, on in shown.items() if on} == {"FI_FD_L8_0_b", "FI_FD_L8_1_a"}
        assert await _value(client, "LD_L8_1", "energised") is False
        # repair, reset the indicators, close the breaker: supply is back
        await DrillClient(client).call("ClearFault", "FD_L8_1")
        await client.write({**{(fi, "reset_cmd"): True for fi in l8_indicators},
                            ("FB_FD_L8_0", "close_cmd"): True})
        await DrillClient(client).call("Step", 1)
        assert await _value(client, "LD_L8_1", "energised") is True
        assert not any((await client.read_values(
            [(fi, "fault_detected") for fi in l8_indicators])).values())


async def test_a_backbone_cable_fault_trips_both_ends_and_no_load_loses_supply(field):
    loads = [(d.id, "energised") for d in field.simulator.model.registry.loads]
    async with _client(field) as client:
        before = await client.read_values(loads)
        await DrillClient(client).call("FaultLine", "BB_A_II_K3_II")
        for end in ("CB_BB_A_II_K3_II_a", "CB_BB_A_II_K3_II_b"):
            assert await _value(client, end, "tripped") is True
        await DrillClient(client).call("Step", 1)
        assert await client.read_values(loads) == before
        assert all(before.values())
        await DrillClient(client).call("ClearFault", "BB_A_II_K3_II")
        await client.write({("CB_BB_A_II_K3_II_a", "close_cmd"): True,
                            ("CB_BB_A_II_K3_II_b", "close_cmd"): True})
        await DrillClient(client).call("Step", 1)
        assert await _value(client, "CB_BB_A_II_K3_II_a", "closed") is True


async def test_values_go_stale_with_a_bad_status_after_communication_is_lost(field):
    meter = [("M_FD_L2_0", p) for p in ("p_mw", "q_mvar", "i_ka", "v_pu")]
    async with _client(field) as client:
        await DrillClient(client).call("LoseComm", "M_FD_L2_0")
        await DrillClient(client).call("Step", 1)
        stale = await client.read([*meter, ("M_FD_L2_6", "p_mw")])
        assert [r.status_name for r in stale[:4]] == ["BadNoCommunication"] * 4
        assert all(r.value is None for r in stale[:4])
        assert stale[4].good  # the other end of the ring still answers
        await DrillClient(client).call("ClearFault", "M_FD_L2_0")
        assert all(r.good for r in await client.read(meter))


async def test_subscriptions_deliver_each_new_measurement(field):
    received: asyncio.Queue[PointReading] = asyncio.Queue()
    async with _client(field) as client:
        subscription = await client.subscribe([("A_T1", "p_mw")], received.put, period_ms=20)
        first = await asyncio.wait_for(received.get(), 10)
        await DrillClient(client).call("Step", 1)
        second = await asyncio.wait_for(received.get(), 10)
        await subscription.close()
    assert first.good and second.good and second.value != first.value
    assert second.value == pytest.approx(field.simulator.reading("A_T1", "p_mw"))


async def test_a_clock_subscription_follows_simulated_time(field):
    ticks: asyncio.Queue = asyncio.Queue()
    async with _client(field) as client:
        subscription = await DrillClient(client).subscribe_clock(ticks.put, period_ms=20)
        await asyncio.wait_for(ticks.get(), 10)  # the present time comes first
        await DrillClient(client).call("Step", 2)
        stamp = await asyncio.wait_for(ticks.get(), 10)
        await subscription.close()
    assert stamp == field.simulator.time.to_pydatetime()


async def test_a_sign_and_encrypt_session_with_a_user_reads_and_writes(field):
    async with _client(field, OPERATOR, SecurityMode.SIGN_ENCRYPT) as client:
        policy = client.ua_client.security_policy
        assert policy.Mode == ua.MessageSecurityMode.SignAndEncrypt
        assert policy.URI.endswith("#Basic256Sha256")
        (result,) = await client.write({("BESS_CAMPUS", "q_set_mvar"): 0.3})
        assert result.good
        clock = await DrillClient(client).clock()
        assert clock.step_mode and clock.sim_time_iso.endswith("+08:00")


async def test_an_untrusted_client_certificate_is_refused_until_it_is_trusted(field, tmp_path):
    stranger = tmp_path / "stranger-pki"
    with pytest.raises(FieldConnectionError):
        async with _client(field, OPERATOR, SecurityMode.SIGN, pki=stranger):
            pass
    assert list(Pki(field.security.pki_dir).rejected_dir.iterdir())  # kept for review
    trust_certificate(field.security.pki_dir, Pki(stranger).certificate_path("gridctl-client"))
    trust_certificate(stranger, Pki(field.security.pki_dir).certificate_path("gridctl-sim"))
    async with _client(field, OPERATOR, SecurityMode.SIGN, pki=stranger) as client:
        assert await _value(client, "BESS_1", "soc_frac") > 0


async def test_a_wrong_password_is_refused(field):
    with pytest.raises(FieldConnectionError, match="BadUserAccessDenied"):
        async with _client(field, (OPERATOR[0], "guess")):
            pass


async def test_only_operators_may_inject_faults(field):
    async with _client(field, VIEWER) as viewer:
        with pytest.raises(SimulatorCallError, match="only an operator"):
            await DrillClient(viewer).call("FaultLine", "FD_L1_1")
    assert "line FD_L1_1" not in field.simulator.faults.active()


async def test_a_refused_method_call_says_why(field):
    async with _client(field) as client:
        with pytest.raises(SimulatorCallError, match="no line 'FD_L0_0'"):
            await DrillClient(client).call("FaultLine", "FD_L0_0")


# --- a second, small server: anonymous sessions refused, clock running ------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running_field(tmp_path_factory):
    from network_models import load_model

    security = ServerSecurity(modes=(SecurityMode.NONE,), pki_dir=tmp_path_factory.mktemp("p"),
                              users=_users(), anonymous=AnonymousPolicy.REFUSE,
                              allow_insecure_passwords=True)
    server = SimServer(load_model("case33bw"), port=0, speed=0.0, start="2026-07-15 08:00",
                       security=security)
    await server.start()
    yield server
    await server.stop()


async def test_anonymous_sessions_are_refused_when_configured(running_field):
    client = FieldClient(running_field.endpoint, running_field.simulator.contract)
    with pytest.raises(FieldConnectionError, match="BadIdentityTokenRejected"):
        await client.connect()


async def test_a_running_clock_advances_on_its_own_and_refuses_steps(running_field):
    async with _client(running_field) as client:
        first = (await DrillClient(client).clock()).tick
        for _ in range(200):
            if (await DrillClient(client).clock()).tick > first:
                break
            await asyncio.sleep(0.05)
        assert (await DrillClient(client).clock()).tick > first
        with pytest.raises(SimulatorCallError, match="only in step mode"):
            await DrillClient(client).call("Step", 1)
