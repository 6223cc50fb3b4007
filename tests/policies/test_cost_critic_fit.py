"""The cost critic's autograd-free fit is autograd + clip_grad_norm_ + torch.optim.Adam, bit for bit."""

import copy

import numpy as np
import pytest
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.vec_env import DummyVecEnv
from toy_envs import SpeedLimitedPointEnv

from taxbench.policies import CostCritic, PPOLagrangian
from taxbench.policies.cost_critic import _direct_fit_supported

MAX_GRAD_NORM = 0.5


def _critic(obs_dim, hidden, activation=th.nn.Tanh, seed=0):
    th.manual_seed(seed)
    space = spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
    return CostCritic(space, hidden_sizes=hidden, activation_fn=activation)


def _data(obs_dim, n_samples, seed=1):
    gen = th.Generator().manual_seed(seed)
    features = th.randn(n_samples, obs_dim, generator=gen)
    targets = (th.rand(n_samples, generator=gen) < 0.3).float() * 5.0  # sparse costs, as in the envs
    return features, targets


def _minibatches(features, targets, batch_size, n_epochs, seed):
    rng = np.random.default_rng(seed)
    for _ in range(n_epochs):
        order = th.as_tensor(rng.permutation(len(targets)))
        for start in range(0, len(targets), batch_size):
            idx = order[start : start + batch_size]
            yield features[idx], targets[idx]


def _reference_fit(critic, optimizer, minibatches):
    """The textbook loop (what PPOLagrangian ran before the direct fit)."""
    losses = []
    for features, targets in minibatches:
        loss = F.mse_loss(critic(features), targets)
        optimizer.zero_grad()
        loss.backward()
        th.nn.utils.clip_grad_norm_(critic.parameters(), MAX_GRAD_NORM)
        optimizer.step()
        losses.append(loss.detach())
    return losses


def _assert_same(critic_a, opt_a, critic_b, opt_b):
    for (key, a), b in zip(critic_a.state_dict().items(), critic_b.state_dict().values(), strict=True):
        assert th.equal(a, b), key
    state_a, state_b = opt_a.state_dict(), opt_b.state_dict()
    assert state_a["param_groups"] == state_b["param_groups"]
    assert state_a["state"].keys() == state_b["state"].keys()
    for idx, entries in state_a["state"].items():
        for key, value in entries.items():
            assert th.equal(value, state_b["state"][idx][key]), (idx, key)


@pytest.mark.parametrize(
    ("obs_dim", "hidden", "activation", "batch_size"),
    [
        (17, (64, 64), th.nn.Tanh, 64),  # HalfCheetah with the preset
        (5, (64, 64), th.nn.ReLU, 50),  # ragged last minibatch
        (3, (7, 5), th.nn.Tanh, 33),  # widths that are no multiple of the SIMD width
        (4, (), th.nn.Tanh, 16),  # linear critic
        (6, (32,), th.nn.ReLU, 1),  # single-sample minibatches
    ],
)
def test_direct_fit_is_autograd_adam_bit_for_bit(obs_dim, hidden, activation, batch_size):
    ref = _critic(obs_dim, hidden, activation)
    fast = copy.deepcopy(ref)
    ref_opt = th.optim.Adam(ref.parameters(), lr=3e-4, eps=1e-5)
    fast_opt = th.optim.Adam(fast.parameters(), lr=3e-4, eps=1e-5)
    assert _direct_fit_supported(fast, fast_opt)
    features, targets = _data(obs_dim, 200)
    for fit, lr in enumerate((3e-4, 1e-3)):  # two fits: state carried over, learning rate changed in between
        for opt in (ref_opt, fast_opt):
            opt.param_groups[0]["lr"] = lr
        ref_losses = _reference_fit(ref, ref_opt, _minibatches(features, targets, batch_size, 3, seed=fit))
        fast_batches = _minibatches(features, targets, batch_size, 3, seed=fit)
        fast_losses = fast.fit_minibatches(fast_opt, fast_batches, MAX_GRAD_NORM)
        assert th.equal(th.stack(ref_losses), th.stack(fast_losses))
        _assert_same(ref, ref_opt, fast, fast_opt)
    initial = _critic(obs_dim, hidden, activation).parameters()
    assert any(not th.equal(a, b) for a, b in zip(ref.parameters(), initial, strict=True))  # it did train


def test_direct_fit_continues_a_torch_adam_state_and_torch_continues_it():
    ref = _critic(8, (64, 64))
    fast = copy.deepcopy(ref)
    ref_opt = th.optim.Adam(ref.parameters(), lr=1e-3, eps=1e-5)
    fast_opt = th.optim.Adam(fast.parameters(), lr=1e-3, eps=1e-5)
    features, targets = _data(8, 128)
    batches = [list(_minibatches(features, targets, 32, 2, seed)) for seed in range(3)]
    _reference_fit(ref, ref_opt, batches[0])
    _reference_fit(fast, fast_opt, batches[0])  # Adam state created by torch
    _reference_fit(ref, ref_opt, batches[1])
    fast.fit_minibatches(fast_opt, batches[1], MAX_GRAD_NORM)  # ... continued by the direct fit
    _assert_same(ref, ref_opt, fast, fast_opt)
    _reference_fit(ref, ref_opt, batches[2])
    _reference_fit(fast, fast_opt, batches[2])  # ... and by torch again
    _assert_same(ref, ref_opt, fast, fast_opt)
    assert all(float(state["step"]) == 3 * 8 for state in fast_opt.state.values())


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda params: th.optim.Adam(params, lr=1e-3, amsgrad=True),
        lambda params: th.optim.Adam(params, lr=1e-3, weight_decay=1e-4),
        lambda params: th.optim.Adam(params, lr=1e-3, foreach=True),
        lambda params: th.optim.AdamW(params, lr=1e-3),
        lambda params: th.optim.SGD(params, lr=1e-2),
    ],
)
def test_other_optimizers_take_the_autograd_path(make_optimizer):
    ref = _critic(4, (16, 16))
    other = copy.deepcopy(ref)
    ref_opt, other_opt = make_optimizer(ref.parameters()), make_optimizer(other.parameters())
    assert not _direct_fit_supported(other, other_opt)
    features, targets = _data(4, 64)
    ref_losses = _reference_fit(ref, ref_opt, _minibatches(features, targets, 16, 2, seed=0))
    other_losses = other.fit_minibatches(other_opt, _minibatches(features, targets, 16, 2, seed=0), MAX_GRAD_NORM)
    assert th.equal(th.stack(ref_losses), th.stack(other_losses))
    _assert_same(ref, ref_opt, other, other_opt)


def test_other_activations_take_the_autograd_path():
    critic = _critic(4, (16,), activation=th.nn.ELU)
    assert not _direct_fit_supported(critic, th.optim.Adam(critic.parameters()))


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -0.5, 1e39])  # 1e39: finite, but not in float32
def test_invalid_costs_are_rejected(bad):
    model = PPOLagrangian("MlpPolicy", DummyVecEnv([SpeedLimitedPointEnv] * 2), n_steps=8, batch_size=8, device="cpu")
    model._setup_learn(16)  # the running tallies the costs are recorded into
    model._record_costs([{"cost": 0.5}, {"cost": 1}], np.array([False, False]))
    assert model._running_ep_cost.tolist() == [0.5, 1.0]
    with pytest.raises(ValueError, match="finite and >= 0"):
        model._record_costs([{"cost": 0.5}, {"cost": bad}], np.array([False, False]))
