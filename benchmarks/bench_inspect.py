"""Shape-inspector benchmark: a 70B Llama-style decoder on meta, and ResNet-152 vs torchinfo.

    python benchmarks/bench_inspect.py            # all cases, each in its own process
    python benchmarks/bench_inspect.py --case llama70b

Targets (2-core CPU machine): the 70B decoder inspects in under 10 s and under 2 GB of
peak RSS. Every case runs in a fresh subprocess so its peak RSS is its own, and the
ResNet-152 ratio compares tui-nn and torchinfo measured in the same process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


# --- a Llama-style decoder (no transformers dependency) --------------------------------------

class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C) -> same
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class Attention(nn.Module):
    """Grouped-query attention: 64 query heads share 8 key/value heads."""

    def __init__(self, dim: int, n_heads: int, n_kv_heads: int, head_dim: int) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = n_heads, n_kv_heads, head_dim
        self.q_proj = nn.Linear(dim, n_heads * head_dim, bias=False)
        self.k_proj = nn.Linear(dim, n_kv_heads * head_dim, bias=False)
        self.v_proj = nn.Linear(dim, n_kv_heads * head_dim, bias=False)
        self.o_proj = nn.Linear(n_heads * head_dim, dim, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)  # (B,H,T,D)
        k = self.k_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)  # (B,KV,T,D)
        v = self.v_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        repeat = self.n_heads // self.n_kv_heads
        k = k.repeat_interleave(repeat, dim=1)  # (B, H, T, D)
        v = v.repeat_interleave(repeat, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, D)
        y = y.transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim)  # (B, T, H·D)
        return self.o_proj(y)


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) · up(x))."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden, bias=False)
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, dim: int, n_heads: int, n_kv_heads: int, head_dim: int, hidden: int) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(dim)
        self.self_attn = Attention(dim, n_heads, n_kv_heads, head_dim)
        self.post_attention_layernorm = RMSNorm(dim)
        self.mlp = MLP(dim, hidden)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class Llama(nn.Module):
    """Llama-3-70B shapes by default: 80 layers, hidden 8192, GQA 64/8 heads, SwiGLU 28672."""

    def __init__(self, vocab: int = 128256, dim: int = 8192, n_layers: int = 80,
                 n_heads: int = 64, n_kv_heads: int = 8, hidden: int = 28672,
                 rope_theta: float = 500000.0) -> None:
        super().__init__()
        self.head_dim = dim // n_heads
        self.rope_theta = rope_theta
        self.embed_tokens = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList(
            DecoderLayer(dim, n_heads, n_kv_heads, self.head_dim, hidden) for _ in range(n_layers))
        self.norm = RMSNorm(dim)
        self.lm_head = nn.Linear(dim, vocab, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # (B, T) int64 -> (B, T, vocab)
        t = tokens.shape[1]
        inv_freq = 1.0 / self.rope_theta ** (
            torch.arange(0, self.head_dim, 2, device=tokens.device).float() / self.head_dim)
        angles = torch.outer(torch.arange(t, device=tokens.device).float(), inv_freq)  # (T, D/2)
        emb = torch.cat((angles, angles), dim=-1)  # (T, D)
        cos, sin = emb.cos(), emb.sin()
        x = self.embed_tokens(tokens)  # (B, T, C)
        for layer in self.layers:
            x = layer(x, cos, sin)
        return self.lm_head(self.norm(x))


# --- cases -----------------------------------------------------------------------------------

def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def case_llama70b() -> dict:
    from tui_nn.shapes import inspect_model

    wall0, cpu0 = time.perf_counter(), time.process_time()
    with torch.device("meta"):
        model = Llama()
    built = time.perf_counter() - wall0
    t1 = time.perf_counter()
    result = inspect_model(model, ["1x2048:int64"])
    inspected = time.perf_counter() - t1
    assert result.ok, result.diagnosis
    return {"case": "llama70b", "params": result.totals.params,
            "param_gib_if_materialised": result.totals.param_bytes / 2**30,
            "mult_adds": result.totals.mult_adds, "rows": len(result.all_rows),
            "build_s": built, "inspect_s": inspected, "total_s": built + inspected,
            "cpu_s": time.process_time() - cpu0, "peak_rss_mb": _peak_rss_mb()}


def case_resnet152() -> dict:
    import torchinfo
    import torchvision

    from tui_nn.shapes import inspect_model

    # The same CPU-built model for both tools: tui-nn traces a meta copy of it.
    model = torchvision.models.resnet152(weights=None)
    inspect_model(torchvision.models.resnet18(weights=None), (3, 64, 64))  # warm both up
    torchinfo.summary(torchvision.models.resnet18(weights=None), input_size=(1, 3, 64, 64),
                      verbose=0)
    runs = 3
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(runs):
        ours = inspect_model(model, (1, 3, 224, 224))
    tui_s = (time.perf_counter() - t0) / runs
    tui_cpu = (time.process_time() - c0) / runs
    t1, c1 = time.perf_counter(), time.process_time()
    for _ in range(runs):
        theirs = torchinfo.summary(model, input_size=(1, 3, 224, 224), verbose=0, depth=100)
    torchinfo_s = (time.perf_counter() - t1) / runs
    torchinfo_cpu = (time.process_time() - c1) / runs
    t2 = time.perf_counter()
    from_source = inspect_model("torchvision.models:resnet152", (1, 3, 224, 224))
    source_s = time.perf_counter() - t2
    assert ours.totals.params == theirs.total_params == from_source.totals.params
    return {"case": "resnet152", "params": ours.totals.params, "rows": len(ours.all_rows),
            "tui_nn_s": tui_s, "torchinfo_s": torchinfo_s, "ratio": tui_s / torchinfo_s,
            "tui_nn_cpu_s": tui_cpu, "torchinfo_cpu_s": torchinfo_cpu,
            "tui_nn_from_source_s": source_s, "peak_rss_mb": _peak_rss_mb()}


CASES = {"llama70b": case_llama70b, "resnet152": case_resnet152}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES))
    args = parser.parse_args()
    if args.case:
        print(json.dumps(CASES[args.case]()))
        return
    # Other work on a 2-core machine inflates wall times: print the load and the CPU times.
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for name in CASES:
        started = time.perf_counter()
        out = subprocess.run([sys.executable, __file__, "--case", name], capture_output=True,
                             text=True, check=True)
        process_s = time.perf_counter() - started  # python start + imports included
        d = json.loads(out.stdout.strip().splitlines()[-1])
        if name == "llama70b":
            verdict = "OK" if d["total_s"] < 10 and d["peak_rss_mb"] < 2048 else "MISSED"
            print(f"Llama-style 70B ({d['params'] / 1e9:.2f} B params, "
                  f"{d['param_gib_if_materialised']:.0f} GiB if materialised, {d['rows']} rows):"
                  f" build on meta {d['build_s']:.2f} s + inspect {d['inspect_s']:.2f} s = "
                  f"{d['total_s']:.2f} s (CPU {d['cpu_s']:.2f} s; whole process with imports "
                  f"{process_s:.1f} s), peak RSS {d['peak_rss_mb']:.0f} MB "
                  f"[target < 10 s, < 2048 MB: {verdict}]")
        else:
            print(f"ResNet-152 ({d['params'] / 1e6:.1f} M params, {d['rows']} rows, 1×3×224×224):"
                  f" tui-nn {d['tui_nn_s']:.2f} s (CPU {d['tui_nn_cpu_s']:.2f} s) vs torchinfo "
                  f"{d['torchinfo_s']:.2f} s (CPU {d['torchinfo_cpu_s']:.2f} s): ×{d['ratio']:.2f};"
                  f" from source, built on meta: {d['tui_nn_from_source_s']:.2f} s; "
                  f"peak RSS {d['peak_rss_mb']:.0f} MB")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
