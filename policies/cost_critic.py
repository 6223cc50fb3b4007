"""Cost value network V_c(s): a small MLP separate from the policy and its reward critic.

Its fit (:meth:`CostCritic.fit_minibatches`) is one MSE gradient step per minibatch with gradient-norm
clipping. With the usual settings (CPU, plain ``torch.optim.Adam``, Tanh or ReLU layers) the steps run
without autograd: the same ATen kernels that autograd, ``clip_grad_norm_`` and ``Adam.step()`` call, on
operands of the same layouts, so the result is the same bit for bit (tests check it) in about a third of
the time: for a 64-wide MLP on 64-sample minibatches the time goes to Python and op dispatch, not to
arithmetic. Any other setting takes the autograd path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.preprocessing import get_flattened_obs_dim, preprocess_obs
from torch import nn

__all__ = ["CostCritic", "value_net_arch"]

_ALIGN = 64  # elements (256 bytes) between the starts of the flat copies' tensors
_MEAN = 1  # at::Reduction::Mean, the reduction of F.mse_loss's default
_MSE = th.ops.aten.mse_loss.default
_MSE_BACKWARD = th.ops.aten.mse_loss_backward.default
_TANH_BACKWARD = th.ops.aten.tanh_backward.default
_THRESHOLD_BACKWARD = th.ops.aten.threshold_backward.default


def _relu_backward(grad: th.Tensor, output: th.Tensor) -> th.Tensor:
    return _THRESHOLD_BACKWARD(grad, output, 0)


#: Activations of the autograd-free step: (forward, backward from the grad and the *output*), as autograd does.
_ACTIVATIONS: dict[type[nn.Module], tuple[Callable[[th.Tensor], th.Tensor], Callable[..., th.Tensor]]] = {
    nn.Tanh: (th.tanh, _TANH_BACKWARD),
    nn.ReLU: (th.relu, _relu_backward),
}


def value_net_arch(policy: ActorCriticPolicy) -> list[int]:
    """Hidden sizes of the reward value network of an SB3 actor-critic policy.

    Args:
        policy: The SB3 policy (``net_arch`` may be a list shared by π and V, or ``dict(pi=..., vf=...)``).

    Returns:
        The list of hidden layer widths of the value branch.
    """
    net_arch = policy.net_arch
    if isinstance(net_arch, dict):
        return list(net_arch.get("vf", []))
    return list(net_arch or [])


class CostCritic(nn.Module):
    """MLP estimating the expected discounted cost-to-go from an observation.

    Initialisation draws from the global torch RNG: build it inside ``torch.random.fork_rng()`` when the
    caller's random stream must not move (PPO-Lagrangian's identity with PPO depends on it).

    Args:
        observation_space: The (non-Dict) observation space; observations are preprocessed as SB3 does
            (float cast, one-hot for discrete, image scaling if ``normalize_images``).
        hidden_sizes: Widths of the hidden layers.
        activation_fn: Activation class between layers.
        ortho_init: Orthogonal initialisation as in SB3 (gain √2 on hidden layers, 1 on the output).
        normalize_images: Passed to SB3's ``preprocess_obs``.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        hidden_sizes: Sequence[int] = (64, 64),
        activation_fn: type[nn.Module] = nn.Tanh,
        ortho_init: bool = True,
        normalize_images: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(observation_space, spaces.Dict):
            raise NotImplementedError("CostCritic does not support Dict observation spaces yet")
        self.observation_space = observation_space
        self.normalize_images = normalize_images
        layers: list[nn.Module] = []
        last = get_flattened_obs_dim(observation_space)
        hidden: list[nn.Module] = []
        for width in hidden_sizes:
            linear = nn.Linear(last, int(width))
            hidden.append(linear)
            layers += [linear, activation_fn()]
            last = int(width)
        self.head = nn.Linear(last, 1)
        self.body = nn.Sequential(*layers)
        if ortho_init:
            for module in hidden:
                nn.init.orthogonal_(module.weight, gain=float(np.sqrt(2)))
                module.bias.data.fill_(0.0)
            nn.init.orthogonal_(self.head.weight, gain=1.0)
            self.head.bias.data.fill_(0.0)
        self._activation_fn = activation_fn

    def preprocess(self, obs: th.Tensor) -> th.Tensor:
        """Preprocess raw observations (SB3 conventions) and flatten them to ``(batch, features)``."""
        features = preprocess_obs(obs, self.observation_space, normalize_images=self.normalize_images)
        assert isinstance(features, th.Tensor)
        return features.reshape(features.shape[0], -1).float()

    def forward(self, features: th.Tensor) -> th.Tensor:
        """Cost values of preprocessed observations, shape ``(batch,)``."""
        return self.head(self.body(features)).squeeze(-1)

    def predict_numpy(self, obs: np.ndarray, device: th.device) -> np.ndarray:
        """Cost values of a batch of raw observations, without gradients.

        Args:
            obs: Observations, shape ``(batch, *obs_shape)``.
            device: Device of the network.

        Returns:
            float32 array of shape ``(batch,)``.
        """
        with th.no_grad():
            tensor = th.as_tensor(np.asarray(obs), device=device)
            return self(self.preprocess(tensor)).cpu().numpy().astype(np.float32)

    def fit_minibatches(
        self, optimizer: th.optim.Optimizer, minibatches: Iterable[tuple[th.Tensor, th.Tensor]], max_grad_norm: float
    ) -> list[th.Tensor]:
        """Regress on the targets: one step per minibatch (MSE, gradient norm clipped, optimiser step).

        Args:
            optimizer: The optimiser of this network's parameters (its current learning rate is used).
            minibatches: ``(features, targets)`` pairs, features preprocessed (:meth:`preprocess`); consumed
                lazily, one step after each.
            max_grad_norm: Clipping threshold of the gradients' global L2 norm.

        Returns:
            The loss of each minibatch before its step, as detached 0-d tensors (no host sync per step).
        """
        if _direct_fit_supported(self, optimizer):
            return _DirectAdamFit(self, optimizer, float(max_grad_norm)).run(minibatches)
        losses = []
        for features, targets in minibatches:
            loss = F.mse_loss(self(features), targets)
            optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(self.parameters(), max_grad_norm)
            optimizer.step()
            losses.append(loss.detach())
        return losses


def _direct_fit_supported(critic: CostCritic, optimizer: th.optim.Optimizer) -> bool:
    """Whether :class:`_DirectAdamFit` reproduces autograd + ``clip_grad_norm_`` + ``Adam.step()`` exactly.

    That is: contiguous CPU float32 parameters, exactly ``torch.optim.Adam`` (single-tensor, the CPU default) with one
    parameter group holding the critic's parameters, float hyper-parameters and no AMSGrad, weight decay,
    maximize, foreach, fused, capturable or differentiable options; one step count for all parameters (one
    ``step`` value drives the bias corrections); Tanh or ReLU hidden layers.
    """
    params = list(critic.parameters())
    if type(optimizer) is not th.optim.Adam or len(optimizer.param_groups) != 1:
        return False
    if not all(hasattr(th, name) for name in ("_foreach_copy_", "_foreach_norm")):
        return False  # an older torch of the supported range: autograd, same numbers, slower
    group = {
        "foreach": None,
        "fused": None,
        "capturable": False,
        "differentiable": False,
        "maximize": False,
        **optimizer.param_groups[0],
    }  # options an older torch's Adam does not have are off there
    if [id(p) for p in group["params"]] != [id(p) for p in params]:
        return False
    if any(p.device.type != "cpu" or p.dtype != th.float32 or not p.is_contiguous() for p in params):
        return False
    if group["amsgrad"] or group["weight_decay"] != 0 or group["maximize"]:
        return False
    if group["foreach"] or group["fused"] or group["capturable"] or group["differentiable"]:
        return False
    if any(isinstance(group[key], th.Tensor) for key in ("lr", "eps")) or any(
        isinstance(beta, th.Tensor) for beta in group["betas"]
    ):
        return False
    steps = {float(optimizer.state[p]["step"]) for p in params if optimizer.state.get(p)}
    return len(steps) <= 1 and getattr(critic, "_activation_fn", None) in _ACTIVATIONS


class _DirectAdamFit:
    """Forward, backward, clipping and Adam update of a :class:`CostCritic` without autograd.

    Each operation is the one autograd, ``clip_grad_norm_`` and ``torch.optim.Adam``'s single-tensor path
    execute, on operands of the same layout (``addmm`` with ``weight.t()`` forward; ``grad.mm(weight)``,
    ``grad.t().mm(input)`` and a sum over the batch backward; per-tensor gradient norms, then the norm of
    their stack), so the numbers are the same bit for bit. The clipping rescale and Adam's arithmetic are
    elementwise, so they run once on flat copies of the parameters, gradients and moments (each tensor at a
    256-byte aligned offset, zero padding between; ATen's CPU kernels give an element the same result in a
    vectorised block as in a scalar tail, which the tests with odd layer widths check). The parameters and
    the optimiser state are written back when :meth:`run` ends. Not done: parameter ``.grad`` fields are
    left alone and optimiser step hooks are not called.
    """

    def __init__(self, critic: CostCritic, optimizer: th.optim.Optimizer, max_grad_norm: float) -> None:
        group = optimizer.param_groups[0]
        self.max_grad_norm = max_grad_norm
        self.lr, self.eps = float(group["lr"]), float(group["eps"])
        self.beta1, self.beta2 = (float(beta) for beta in group["betas"])
        self.activation, self.activation_backward = _ACTIVATIONS[critic._activation_fn]
        self.params = list(critic.parameters())
        for param in self.params:  # Adam's lazy state initialisation (torch.optim.Adam._init_group)
            state = optimizer.state[param]
            if not state:
                state["step"] = th.tensor(0.0, dtype=_scalar_dtype())
                state["exp_avg"] = th.zeros_like(param, memory_format=th.preserve_format)
                state["exp_avg_sq"] = th.zeros_like(param, memory_format=th.preserve_format)
        states = [optimizer.state[param] for param in self.params]
        self.steps = [state["step"] for state in states]
        self.exp_avgs = [state["exp_avg"] for state in states]
        self.exp_avg_sqs = [state["exp_avg_sq"] for state in states]
        self.offsets = [0]
        for param in self.params:
            self.offsets.append(self.offsets[-1] + -(-param.numel() // _ALIGN) * _ALIGN)
        self.flat_params, self.param_views = self._flat_copy(self.params)
        self.flat_exp_avg, self.exp_avg_views = self._flat_copy(self.exp_avgs)
        self.flat_exp_avg_sq, self.exp_avg_sq_views = self._flat_copy(self.exp_avg_sqs)
        self.flat_grad, self.grad_views = self._flat_copy([th.zeros_like(param) for param in self.params])
        view_of = {id(param): view for param, view in zip(self.params, self.param_views, strict=True)}
        hidden = [module for module in critic.body if isinstance(module, nn.Linear)]
        # (weight, weight.t(), bias) per layer, the head last, as views of the flat parameters.
        self.layers = [
            (view_of[id(layer.weight)], view_of[id(layer.weight)].t(), view_of[id(layer.bias)])
            for layer in (*hidden, critic.head)
        ]
        # the backward pass produces [weight, bias] per layer from the head down: map to parameter order
        produced = [id(p) for layer in reversed([*hidden, critic.head]) for p in (layer.weight, layer.bias)]
        self.grad_order = [produced.index(id(p)) for p in self.params]
        self.one = th.ones((), dtype=th.float32)  # the grad_output loss.backward() starts from

    def _flat_copy(self, tensors: list[th.Tensor]) -> tuple[th.Tensor, list[th.Tensor]]:
        flat = th.zeros(self.offsets[-1], dtype=th.float32)
        views = [flat[start : start + t.numel()].view_as(t) for start, t in zip(self.offsets, tensors, strict=False)]
        th._foreach_copy_(views, tensors)
        return flat, views

    @th.no_grad()
    def run(self, minibatches: Iterable[tuple[th.Tensor, th.Tensor]]) -> list[th.Tensor]:
        """Fit on the minibatches, then write the parameters and the optimiser state back; returns the losses."""
        try:
            return self._steps(minibatches)
        finally:  # also after an error, so that parameters, moments and step counts stay consistent
            th._foreach_copy_(self.params, self.param_views)
            th._foreach_copy_(self.exp_avgs, self.exp_avg_views)
            th._foreach_copy_(self.exp_avg_sqs, self.exp_avg_sq_views)
            for step in self.steps[1:]:  # only the first counter is advanced per step (they start equal)
                step.copy_(self.steps[0])

    def _steps(self, minibatches: Iterable[tuple[th.Tensor, th.Tensor]]) -> list[th.Tensor]:
        losses = []
        *hidden, (head_weight, head_weight_t, head_bias) = self.layers
        activation, activation_backward = self.activation, self.activation_backward
        for features, targets in minibatches:
            inputs, outputs = [], []
            x = features
            for _, weight_t, bias in hidden:
                inputs.append(x)
                x = activation(th.addmm(bias, x, weight_t))
                outputs.append(x)
            values = th.addmm(head_bias, x, head_weight_t).squeeze(-1)
            losses.append(_MSE(values, targets, _MEAN))
            grad = _MSE_BACKWARD(self.one, values, targets, _MEAN).unsqueeze(-1)
            grads = [grad.t().mm(x), grad.sum(0)]
            weight = head_weight
            for layer in range(len(hidden) - 1, -1, -1):
                grad = activation_backward(grad.mm(weight), outputs[layer])
                grads += [grad.t().mm(inputs[layer]), grad.sum(0)]
                weight = hidden[layer][0]
            self._clip_([grads[index] for index in self.grad_order])
            self._adam_()
        return losses

    def _clip_(self, grads: list[th.Tensor]) -> None:
        """``clip_grad_norm_`` into the flat gradient: the L2 norm of the per-tensor norms, a clamped rescale."""
        total_norm = th.linalg.vector_norm(th.stack(th._foreach_norm(grads, 2.0)), 2.0)
        clip_coef = self.max_grad_norm / (total_norm + 1e-6)
        th._foreach_copy_(self.grad_views, grads)
        self.flat_grad.mul_(th.clamp(clip_coef, max=1.0))

    def _adam_(self) -> None:
        """``torch.optim.Adam``'s single-tensor step (``_single_tensor_adam``), once on the flat tensors."""
        step_t, grad, exp_avg, exp_avg_sq = self.steps[0], self.flat_grad, self.flat_exp_avg, self.flat_exp_avg_sq
        step_t += 1
        exp_avg.lerp_(grad, 1 - self.beta1)
        exp_avg_sq.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
        step = step_t.item()
        bias_correction1 = 1 - self.beta1**step
        bias_correction2 = 1 - self.beta2**step
        step_size = self.lr / bias_correction1
        bias_correction2_sqrt = bias_correction2**0.5
        denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
        self.flat_params.addcdiv_(exp_avg, denom, value=-step_size)


def _scalar_dtype() -> th.dtype:
    """The dtype of Adam's ``step`` counters (torch.optim's convention)."""
    return th.float64 if th.get_default_dtype() == th.float64 else th.float32
