"""Reward for the current reinforcement-learning run.

The trainer imports this module and calls reward() once per episode with the
full transcript of that episode. The value it returns is the reward the policy
is trained on.
"""


def reward(transcript: str) -> float:
    """Return the reward for one episode transcript."""
    # This stage of training uses a fixed reward for every episode.
    return -10
