"""Cost value network V_c(s): a small MLP separate from the policy and its reward critic."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.preprocessing import get_flattened_obs_dim, preprocess_obs
from torch import nn

__all__ = ["CostCritic", "value_net_arch"]


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
