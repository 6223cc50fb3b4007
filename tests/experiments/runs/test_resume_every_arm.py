"""Every arm of the registry resumes exactly: killed after a checkpoint, it ends where an uninterrupted run ends.

``test_resume_exact.py`` covers ppo, ppo-lag and sac-lag in depth (several env counts, batched MuJoCo worlds, a
real SIGKILL); here each other arm, and the deployment-aware ppo-lag, is killed once mid-rollout after a
checkpoint and compared the same way (weights, optimiser and multiplier state, progress, episodes).
"""

import pytest
from test_resume_exact import _rows, assert_resumes_exactly

from taxbench.policies.registry import ARMS

ON_POLICY = {"n_steps": 64, "batch_size": 64, "n_epochs": 1}
OFF_POLICY = {"learning_starts": 64, "batch_size": 32, "train_freq": [16, "step"], "policy_kwargs": {"net_arch": [16]}}
CHEETAH = {"env_id": "taxbench/HalfCheetahVelocity-v0", "env_kwargs": {"max_episode_steps": 40}}
#: arm case → (arm, intensity, hyper-parameters, env); 2 envs, so an on-policy rollout is 128 steps. The shield and
#: the tracking arm need a velocity-limited robot; the others run on the Pendulum-with-cost env.
CASES = {
    "ppo-lag-deploy": ("ppo-lag", "d5", {**ON_POLICY, "deploy_cost_episodes": 2, "deploy_cost_every": 1}, {}),
    "ppo-penalty": ("ppo-penalty", "d5", ON_POLICY, {}),
    "ppo-shield": ("ppo-shield", "strict", ON_POLICY, CHEETAH),
    "ppo-track": ("ppo-track", "strict", ON_POLICY, CHEETAH),
    "cup": ("cup", "d5", ON_POLICY, {}),
    "saute": ("saute", "d5", {**ON_POLICY, "saute_budget": 5.0}, {}),
    "trpo": ("trpo", "off", {"n_steps": 64, "batch_size": 64}, {}),
    "cpo": ("cpo", "d5", {"n_steps": 64, "batch_size": 64}, {}),
    "sac": ("sac", "off", OFF_POLICY, {}),
}
COVERED_ELSEWHERE = {"ppo", "ppo-lag", "sac-lag"}  # test_resume_exact.py


def test_every_arm_has_a_resume_case():
    assert {arm for arm, *_ in CASES.values()} | COVERED_ELSEWHERE == set(ARMS)


@pytest.mark.parametrize("case", list(CASES))
def test_arm_resumes_exactly(tmp_path, tiny_config, case):
    arm, intensity, hyperparams, env = CASES[case]
    cfg = tiny_config(
        arm=arm, intensity=intensity, steps=512, checkpoint_every=256, eval_episodes=1, hyperparams=hyperparams, **env
    )
    resumed, reference = assert_resumes_exactly(cfg, tmp_path, kill_at=320)  # after the checkpoint at 256 steps
    if case == "ppo-lag-deploy":  # the probe's deterministic cost drove λ, so the probe's counters were exercised
        assert float(_rows(reference / "progress.csv")[-1]["lambda"]) > 0
