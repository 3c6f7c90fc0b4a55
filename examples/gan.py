"""A small GAN: two models, two optimizers, stepped in turn."""
import torch
from torch import nn, optim

latent_dim = 64


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, 256), nn.ReLU(), nn.Linear(256, 784), nn.Tanh())

    def forward(self, z):
        return self.net(z)


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(784, 256), nn.LeakyReLU(0.2), nn.Linear(256, 1))

    def forward(self, x):
        return self.net(x)


gen = Generator()
disc = Discriminator()
criterion = nn.BCEWithLogitsLoss()

# DCGAN's settings: beta1 = 0.5
opt_g = optim.Adam(gen.parameters(), lr=2e-4, betas=(0.5, 0.999))
opt_d = optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))

loader = torch.utils.data.DataLoader(torch.load("images.pt"), batch_size=128, shuffle=True)
for epoch in range(20):
    for real, _ in loader:
        real = real.view(real.size(0), -1)
        z = torch.randn(real.size(0), latent_dim)
        fake = gen(z)

        # Discriminator: real -> 1, fake -> 0
        opt_d.zero_grad()
        loss_d = criterion(disc(real), torch.ones(real.size(0), 1)) + criterion(
            disc(fake.detach()), torch.zeros(real.size(0), 1))
        loss_d.backward()
        opt_d.step()

        # Generator: make the discriminator say 1
        opt_g.zero_grad()
        loss_g = criterion(disc(fake), torch.ones(real.size(0), 1))
        loss_g.backward()
        opt_g.step()
    print(f"epoch {epoch}: loss_d={loss_d.item():.3f} loss_g={loss_g.item():.3f}")
