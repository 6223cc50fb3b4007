import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taxbench.policies import Lagrange


def test_defaults_follow_omnisafe():
    lag = Lagrange()
    assert lag.value == 0.0
    assert lag.lr == 0.035
    assert lag.cost_limit == 25.0
    assert not lag.pinned


def test_rises_when_cost_above_limit():
    lag = Lagrange(cost_limit=10.0, lr=0.1)
    first = lag.update(30.0)
    assert first == pytest.approx(2.0)
    second = lag.update(30.0)
    assert second == pytest.approx(4.0)
    assert lag.value == second


def test_falls_and_clips_at_zero():
    lag = Lagrange(cost_limit=10.0, lr=0.1, init=1.0)
    assert lag.update(5.0) == pytest.approx(0.5)
    assert lag.update(0.0) == 0.0  # 0.5 - 1.0 clipped
    assert lag.update(0.0) == 0.0


def test_at_limit_is_fixed_point():
    lag = Lagrange(cost_limit=10.0, lr=0.5, init=0.3)
    assert lag.update(10.0) == pytest.approx(0.3)


def test_pinned_stays():
    lag = Lagrange(cost_limit=1.0, lr=1.0, init=0.25, pinned=True)
    for cost in (100.0, 0.0, 50.0):
        assert lag.update(cost) == 0.25
    assert lag.value == 0.25
    assert lag.last_episode_cost == 50.0


def test_adam_steps_about_lr_and_clips():
    lag = Lagrange(cost_limit=10.0, lr=0.035, optimizer="adam")
    assert lag.update(1000.0) == pytest.approx(0.035, rel=1e-6)  # bias-corrected first step = lr
    for _ in range(200):  # momentum carries it up a little, then it falls back and is clipped at 0
        lag.update(0.0)
    assert lag.value == 0.0


def test_upper_bound():
    lag = Lagrange(cost_limit=0.0, lr=1.0, upper_bound=2.0)
    assert lag.update(10.0) == 2.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cost_limit": -1.0},
        {"lr": -0.1},
        {"init": -0.5},
        {"cost_limit": math.nan},
        {"cost_limit": math.inf},
        {"lr": math.nan},
        {"init": math.inf},
        {"optimizer": "rmsprop"},
        {"init": 3.0, "upper_bound": 1.0},
    ],
)
def test_bad_construction_raises(kwargs):
    with pytest.raises(ValueError, match=r"cost_limit|lr|init|optimizer|upper_bound"):
        Lagrange(**kwargs)


@pytest.mark.parametrize("cost", [math.nan, math.inf, -1.0, "abc", None])
def test_bad_update_raises(cost):
    lag = Lagrange()
    with pytest.raises(ValueError, match="mean_episode_cost"):
        lag.update(cost)
    assert lag.value == 0.0


def test_state_dict_round_trip():
    lag = Lagrange(cost_limit=5.0, lr=0.2, optimizer="adam")
    for cost in (20.0, 8.0, 3.0):
        lag.update(cost)
    restored = Lagrange()
    restored.load_state_dict(lag.state_dict())
    assert restored.state_dict() == lag.state_dict()
    assert restored.update(12.0) == lag.update(12.0)


def test_load_state_dict_validates():
    state = Lagrange().state_dict()
    state["value"] = -1.0
    with pytest.raises(ValueError, match="value"):
        Lagrange().load_state_dict(state)
    del state["value"]
    with pytest.raises(ValueError, match="missing"):
        Lagrange().load_state_dict(state)


@given(
    costs=st.lists(st.floats(min_value=0, max_value=1e4, allow_nan=False), min_size=1, max_size=30),
    limit=st.floats(min_value=0, max_value=100),
    lr=st.floats(min_value=0, max_value=10),
)
def test_lambda_stays_non_negative_and_moves_with_sign(costs, limit, lr):
    lag = Lagrange(cost_limit=limit, lr=lr)
    for cost in costs:
        before = lag.value
        after = lag.update(cost)
        assert after >= 0.0
        if cost > limit:
            assert after >= before
        elif cost < limit:
            assert after <= before


# ----------------------------------------------------------------------------- PID-Lagrangian
from taxbench.policies import PIDLagrange, make_multiplier  # noqa: E402


def test_pid_defaults_are_omnisafe_gains():
    pid = PIDLagrange()
    assert (pid.kp, pid.ki, pid.kd, pid.value) == (0.1, 0.01, 0.01, 0.0)


def test_pid_with_only_integral_is_gradient_ascent():
    pid = PIDLagrange(cost_limit=10.0, kp=0.0, ki=0.1, kd=0.0)
    grad = Lagrange(cost_limit=10.0, lr=0.1)
    for cost in (30.0, 25.0, 0.0, 0.0, 0.0, 40.0):
        assert pid.update(cost) == pytest.approx(grad.update(cost))


def test_pid_proportional_and_derivative_react_at_once():
    pid = PIDLagrange(cost_limit=10.0, kp=0.1, ki=0.0, kd=0.5)
    assert pid.update(30.0) == pytest.approx(2.0)  # P only: no derivative at the first update
    assert pid.update(40.0) == pytest.approx(0.1 * 30 + 0.5 * 10)  # rising cost: D adds
    assert pid.update(20.0) == pytest.approx(0.1 * 10)  # falling cost: D is clipped at 0
    assert pid.update(0.0) == 0.0  # below the limit with no integral: λ = 0


def test_pid_pinned_and_bounded():
    pinned = PIDLagrange(init=0.3, pinned=True)
    assert pinned.update(1e6) == 0.3
    assert PIDLagrange(cost_limit=0.0, kp=10.0, upper_bound=5.0).update(100.0) == 5.0


def test_pid_state_round_trip():
    pid = PIDLagrange(cost_limit=5.0, d_delay=3, p_ema=0.5, d_ema=0.5)
    for cost in (20.0, 8.0, 3.0, 9.0):
        pid.update(cost)
    restored = PIDLagrange()
    restored.load_state_dict(pid.state_dict())
    assert restored.state_dict() == pid.state_dict()
    assert restored.update(12.0) == pid.update(12.0)
    state = pid.state_dict()
    del state["integral"]
    with pytest.raises(ValueError, match="missing"):
        PIDLagrange().load_state_dict(state)


@pytest.mark.parametrize("kwargs", [{"kp": -1.0}, {"ki": math.nan}, {"d_delay": 0}, {"p_ema": 1.0}])
def test_pid_validates(kwargs):
    with pytest.raises(ValueError):
        PIDLagrange(**kwargs)


def test_make_multiplier():
    assert isinstance(make_multiplier("grad", lr=0.2), Lagrange)
    assert isinstance(make_multiplier("pid", kp=0.3), PIDLagrange)
    with pytest.raises(ValueError, match="grad, pid"):
        make_multiplier("bang-bang")


@given(costs=st.lists(st.floats(min_value=0, max_value=1e4, allow_nan=False), min_size=1, max_size=30))
def test_pid_lambda_never_negative(costs):
    pid = PIDLagrange(cost_limit=25.0)
    assert all(pid.update(cost) >= 0.0 for cost in costs)
