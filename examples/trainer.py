"""A trainer class that keeps the optimizer it is given as self.optimizer."""
import torch
import torch.nn as nn
from torch.optim import AdamW


class Trainer:
    def __init__(self, model, data, optimizer, grad_clip=1.0):
        self.model = model
        self.data = data
        self.optimizer = optimizer
        self.grad_clip = grad_clip
        self.loss_fn = nn.CrossEntropyLoss()

    def train_step(self, inputs, labels):
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model(inputs), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        return loss.item()

    def fit(self, epochs):
        for epoch in range(epochs):
            total = 0.0
            for inputs, labels in self.data:
                total += self.train_step(inputs, labels)
            print(f"epoch {epoch}: {total / len(self.data):.4f}")

    def save(self, path):
        torch.save({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}, path)


if __name__ == "__main__":
    model = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 10))
    data = torch.utils.data.DataLoader(torch.load("features.pt"), batch_size=32)
    optimizer = AdamW(model.parameters(), lr=3e-4)
    trainer = Trainer(model, data, optimizer)
    trainer.fit(epochs=5)
    trainer.save("checkpoint.pt")
