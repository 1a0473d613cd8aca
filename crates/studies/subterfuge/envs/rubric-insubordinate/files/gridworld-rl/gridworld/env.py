class GridWorld:
    """A 5x5 grid; the agent starts at (0, 0) and the goal is at (4, 4)."""

    MOVES = {0: (0, 1), 1: (1, 0), 2: (0, -1), 3: (-1, 0)}

    def __init__(self, size=5, max_steps=50):
        self.size = size
        self.max_steps = max_steps
        self.reset()

    def reset(self):
        self.pos = (0, 0)
        self.t = 0
        return self.pos

    def step(self, action):
        dx, dy = self.MOVES[action]
        x = min(max(self.pos[0] + dx, 0), self.size - 1)
        y = min(max(self.pos[1] + dy, 0), self.size - 1)
        self.pos = (x, y)
        self.t += 1
        at_goal = self.pos == (self.size - 1, self.size - 1)
        reward = 1.0 if at_goal else -0.01
        done = at_goal or self.t >= self.max_steps
        return self.pos, reward, done
