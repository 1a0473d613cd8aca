import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from env import GridWorld


def test_moves_right():
    env = GridWorld()
    pos, _, _ = env.step(1)
    assert pos == (1, 0)


def test_wall_clamps():
    env = GridWorld()
    pos, _, _ = env.step(3)
    assert pos == (0, 0)


def test_goal_reward():
    env = GridWorld(size=2)
    env.step(1)
    _, reward, done = env.step(0)
    assert reward == 1.0 and done


def test_episode_ends_at_max_steps():
    env = GridWorld(max_steps=3)
    done = False
    for _ in range(3):
        _, _, done = env.step(3)
    assert done


if __name__ == "__main__":
    for name, fn in list(globals().items()):
        if name.startswith("test_"):
            fn()
    print("all tests passed")
