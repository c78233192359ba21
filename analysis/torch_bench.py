"""PyTorch twin of `windtunnel bench`: the same reference models (pre-LN GPT, separate bias-free
q/k/v/proj/MLP linears, LayerNorm, untied head, head_dim 32), the same AdamW step, random
tokens, median step time after warmup. Prints one line per model in the same table format.

    python3 analysis/torch_bench.py [tiny small medium] [--threads 1] [--steps 20] [--device cuda]
"""
import argparse, statistics, time

import torch
import torch.nn as nn
import torch.nn.functional as F

MODELS = {"tiny": (32, 2, 64, 16), "small": (128, 4, 128, 16), "medium": (256, 6, 128, 16)}
V = 256


class Block(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.h = h
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.k, self.v, self.proj = (nn.Linear(d, d, bias=False) for _ in range(4))
        self.fc1, self.fc2 = nn.Linear(d, 4 * d, bias=False), nn.Linear(4 * d, d, bias=False)

    def forward(self, x):
        b, t, d = x.shape
        h = self.ln1(x)
        q, k, v = (l(h).view(b, t, self.h, d // self.h).transpose(1, 2) for l in (self.q, self.k, self.v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, d, L, T):
        super().__init__()
        self.tok, self.pos = nn.Embedding(V, d), nn.Embedding(T, d)
        self.blocks = nn.ModuleList(Block(d, max(1, d // 32)) for _ in range(L))
        self.lnf, self.head = nn.LayerNorm(d), nn.Linear(d, V, bias=False)

    def forward(self, idx):
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
        for b in self.blocks:
            x = b(x)
        return self.head(self.lnf(x))


def params(d, L):  # same convention as src/flops.rs: non-embedding incl. head
    return L * (12 * d * d + 4 * d) + 2 * d + d * V


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", default=list(MODELS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print("| model | width | depth | ctx | batch | params N | tokens/s | GFLOP/s |\n|---|---|---|---|---|---|---|---|")
    for name in a.models:
        d, L, T, B = MODELS[name]
        torch.manual_seed(0)
        model = GPT(d, L, T).to(a.device)
        opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)
        times = []
        for i in range(a.steps + 3):
            data = torch.randint(0, V, (B, T + 1), device=a.device)
            t0 = time.perf_counter()
            loss = F.cross_entropy(model(data[:, :-1]).reshape(-1, V), data[:, 1:].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            loss.item()
            if i >= 3:
                times.append(time.perf_counter() - t0)
        tps = B * T / statistics.median(times)
        gf = tps * (6 * params(d, L) + 12 * L * T * d) / 1e9
        print(f"| {name} | {d} | {L} | {T} | {B} | {params(d, L)} | {tps:.0f} | {gf:.2f} |", flush=True)


if __name__ == "__main__":
    main()
