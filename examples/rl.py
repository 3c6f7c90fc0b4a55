"""REINFORCE on a gym-style environment. `env.step(action)` is the environment, not an optimizer."""
import gymnasium as gym
import torch
import torch.nn as nn
from torch.distributions import Categorical
from torch.optim import RMSprop

env = gym.make("CartPole-v1")
policy = nn.Sequential(nn.Linear(4, 128), nn.ReLU(), nn.Linear(128, 2), nn.Softmax(dim=-1))
optimizer = RMSprop(policy.parameters(), lr=1e-3)
gamma = 0.99


def run_episode():
    state, _ = env.reset()
    log_probs, rewards = [], []
    done = False
    while not done:
        dist = Categorical(policy(torch.as_tensor(state, dtype=torch.float32)))
        action = dist.sample()
        state, reward, terminated, truncated, _ = env.step(action.item())
        log_probs.append(dist.log_prob(action))
        rewards.append(reward)
        done = terminated or truncated
    return log_probs, rewards


for episode in range(500):
    log_probs, rewards = run_episode()
    returns, g = [], 0.0
    for r in reversed(rewards):
        g = r + gamma * g
        returns.insert(0, g)
    returns = torch.tensor(returns)
    returns = (returns - returns.mean()) / (returns.std() + 1e-8)
    loss = -(torch.stack(log_probs) * returns).sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
