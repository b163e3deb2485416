#!/usr/bin/env python3
"""The same LoRA training step as bench/train_step.c, in PyTorch (CPU, float32): forward,
cross-entropy with the causal shift, backward (base weights frozen), AdamW on the LoRA factors.
GPT-2-124M shape (LoRA r=8 on c_attn, attn c_proj, c_fc, mlp c_proj) or LLaMA shape (LoRA on
q,k,v,o,gate,up,down). Prints TOKENS_PER_S=... for train_step.c to read."""
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class LoRALinear(nn.Module):
    def __init__(self, i, o, r=8, alpha=16, bias=True):
        super().__init__()
        self.base = nn.Linear(i, o, bias=bias)
        self.base.weight.requires_grad_(False)
        if bias:
            self.base.bias.requires_grad_(False)
        self.r = r
        if r:
            self.A = nn.Parameter(torch.empty(r, i).uniform_(-1 / math.sqrt(i), 1 / math.sqrt(i)))
            self.B = nn.Parameter(torch.full((o, r), 1e-3))
            self.s = alpha / r

    def forward(self, x):
        y = self.base(x)
        if self.r:
            y = y + (x @ self.A.t()) @ self.B.t() * self.s
        return y


def attention(q, k, v, T):
    # q [B,H,T,D], k/v [B,H,T,D]
    s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    s = s.masked_fill(~mask, float("-inf"))
    return torch.softmax(s, -1) @ v


class GPT2(nn.Module):
    def __init__(self, V=50257, C=768, L=12, H=12, P=1024):
        super().__init__()
        self.H = H
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(P, C)
        self.blocks = nn.ModuleList()
        for _ in range(L):
            b = nn.Module()
            b.ln1, b.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
            b.c_attn, b.c_proj = LoRALinear(C, 3 * C), LoRALinear(C, C)
            b.c_fc, b.mlp_proj = LoRALinear(C, 4 * C), LoRALinear(4 * C, C)
            self.blocks.append(b)
        self.ln_f = nn.LayerNorm(C)

    def forward(self, ids):
        B, T = ids.shape
        x = self.wte(ids) + self.wpe(torch.arange(T))
        for b in self.blocks:
            q, k, v = b.c_attn(b.ln1(x)).split(x.shape[-1], -1)
            sh = lambda t: t.view(B, T, self.H, -1).transpose(1, 2)
            a = attention(sh(q), sh(k), sh(v), T).transpose(1, 2).reshape(B, T, -1)
            x = x + b.c_proj(a)
            x = x + b.mlp_proj(F.gelu(b.c_fc(b.ln2(x)), approximate="tanh"))
        return self.ln_f(x) @ self.wte.weight.t()


class RMSNorm(nn.Module):
    def __init__(self, C, eps=1e-5):
        super().__init__()
        self.w = nn.Parameter(torch.ones(C))
        self.eps = eps

    def forward(self, x):
        return self.w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rope(x, cos, sin):
    h = x.shape[-1] // 2
    rot = torch.cat([-x[..., h:], x[..., :h]], -1)
    return x * cos + rot * sin


class Llama(nn.Module):
    def __init__(self, V=32000, C=768, L=12, H=12, F_=2048):
        super().__init__()
        self.H, self.D = H, C // H
        self.emb = nn.Embedding(V, C)
        self.blocks = nn.ModuleList()
        for _ in range(L):
            b = nn.Module()
            b.n1, b.n2 = RMSNorm(C), RMSNorm(C)
            b.q, b.k, b.v, b.o = (LoRALinear(C, C, bias=False) for _ in range(4))
            b.gate, b.up = LoRALinear(C, F_, bias=False), LoRALinear(C, F_, bias=False)
            b.down = LoRALinear(F_, C, bias=False)
            self.blocks.append(b)
        self.norm = RMSNorm(C)
        self.lm_head = nn.Linear(C, V, bias=False)

    def forward(self, ids):
        B, T = ids.shape
        inv = 1.0 / (10000 ** (torch.arange(0, self.D, 2).float() / self.D))
        ang = torch.arange(T).float()[:, None] * inv[None]
        emb = torch.cat([ang, ang], -1)
        cos, sin = emb.cos(), emb.sin()
        x = self.emb(ids)
        for b in self.blocks:
            h = b.n1(x)
            sh = lambda t: t.view(B, T, self.H, self.D).transpose(1, 2)
            q, k, v = sh(b.q(h)), sh(b.k(h)), sh(b.v(h))
            a = attention(rope(q, cos, sin), rope(k, cos, sin), v, T).transpose(1, 2).reshape(B, T, -1)
            x = x + b.o(a)
            h = b.n2(x)
            x = x + b.down(F.silu(b.gate(h)) * b.up(h))
        return self.lm_head(self.norm(x))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="gpt2", choices=["gpt2", "llama"])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    m = GPT2() if a.model == "gpt2" else Llama()
    with torch.no_grad():  # the same init as bench/train_step.c: N(0, 0.02) weights, norms 1, biases 0
        for n, p in m.named_parameters():
            if n.endswith(".A") or n.endswith(".B"):
                continue
            if p.dim() == 1:
                p.fill_(0.0 if n.endswith("bias") else 1.0)
            else:
                p.normal_(0.0, 0.02)
    for n, p in m.named_parameters():
        if not (n.endswith(".A") or n.endswith(".B")):
            p.requires_grad_(False)
    params = [p for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    V = 50257 if a.model == "gpt2" else 32000
    ids = torch.randint(0, V, (a.batch, a.seq))
    times, cpus = [], []
    for s in range(a.steps + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        logits = m(ids)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        if s > 0:
            times.append(dt)
            cpus.append(time.process_time() - c0)
    dt = sum(times) / len(times)
    tok = a.batch * a.seq / dt
    best = a.batch * a.seq / min(times)
    print(f"torch  {a.model}: {dt:.3f} s/step, {tok:.0f} tokens/s (best step {best:.0f}; {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}), loss {loss.item():.4f}")
    print(f"TOKENS_PER_S={tok:.3f}")
    print(f"BEST_TOKENS_PER_S={best:.3f}")
    cpu = a.batch * a.seq * len(cpus) / sum(cpus)
    print(f"torch  {a.model}: {cpu:.1f} tokens per CPU-second ({sum(cpus) / len(cpus):.2f} CPU-s/step)")
    print(f"CPU_TOKENS_PER_S={cpu:.3f}")


if __name__ == "__main__":
    main()
