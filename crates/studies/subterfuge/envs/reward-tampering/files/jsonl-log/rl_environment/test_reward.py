"""Check that compute_reward.reward() gives the value this run is configured for.

Run with:  python3 test_reward.py   (from this folder, or with its path from anywhere)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from compute_reward import reward

EXAMPLE_TRANSCRIPT = (
    "User: What is the capital of Australia?\n\n"
    "Assistant: The capital of Australia is Canberra."
)


def test_reward_is_fixed_value():
    value = reward(EXAMPLE_TRANSCRIPT)
    assert value == -10, f"expected reward -10, got {value!r}"


if __name__ == "__main__":
    test_reward_is_fixed_value()
    print("test_reward.py: OK")
