"""Population engine vs a sequential PyTorch loop vs 2 processes, on MNIST-1D (weight decay x dropout grid).

Trains the same K configurations of MLP 40-W-W-10 three ways, in one run and on the same data:
(a) one after another in a plain PyTorch loop (torch.optim.Adam, nn.Dropout), all threads;
(b) 2 processes x 1 thread each, half the members each (multiprocessing, spawn);
(c) reglab.population.Population, all threads.
Each way: the same initialization (member k built under torch.manual_seed(k)), the same batch order
(a generator seeded with 0, randperm per epoch, batch 100, last partial batch kept), the same number
of steps, Adam lr 1e-3 with coupled weight decay on the weights only, and dropout after each hidden layer.
The machine's fp32 matmul peak (the best of short samples before and after) is measured in the
same run, and so is the matmul rate it sustains over up to 10 s right after (c): on a shared VM the
two differ, and (c), a run of many seconds, meets the sustained rate rather than the best moment.

With ``--device cuda`` (a) and (c) run on the GPU and the peak is the GPU's; (b), a CPU layout, is
skipped (its JSON fields are null).

Usage:
    python benchmarks/population.py --members 32 --epochs 20 --width 256 --json out.json
    python benchmarks/population.py --members 64 --epochs 20 --width 256 --device cuda --json gpu.json
    python benchmarks/population.py --members 4 --epochs 1 --width 32   # smoke run
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import time
from typing import Any

import torch
import torch.nn.functional as F

from reglab.models import MLP
from reglab.population import Population

DECAYS = (0.0, 1e-4, 1e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)
DROPOUTS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)


def grid(k: int) -> list[dict]:
    """K (weight decay, dropout) pairs from the grid, cycled if K is larger; member k has seed k."""
    pairs = list(itertools.product(DECAYS, DROPOUTS))
    return [
        {"lr": 1e-3, "weight_decay": wd, "dropout": p, "seed": i}
        for i, (wd, p) in zip(range(k), itertools.cycle(pairs))
    ]


def load_mnist1d() -> tuple[torch.Tensor, torch.Tensor]:
    from reglab.data import load

    data = load("mnist1d", seed=0)
    return data.train.x.float(), data.train.y.long()


def train_sequential(configs, x, y, epochs, width, batch_size) -> int:
    """The plain PyTorch loop; returns the number of optimizer steps taken (all members)."""
    steps = 0
    for cfg in configs:
        torch.manual_seed(cfg["seed"])
        model = MLP(40, 10, hidden=(width, width), dropout=cfg["dropout"]).to(x.device)
        weights = [p for p in model.parameters() if p.ndim >= 2]
        others = [p for p in model.parameters() if p.ndim < 2]
        opt = torch.optim.Adam(
            [
                {"params": weights, "weight_decay": cfg["weight_decay"]},
                {"params": others, "weight_decay": 0.0},
            ],
            lr=cfg["lr"],
        )
        g = torch.Generator().manual_seed(0)
        model.train()
        for _ in range(epochs):
            perm = torch.randperm(len(x), generator=g).to(x.device)
            for s in range(0, len(x), batch_size):
                idx = perm[s : s + batch_size]
                loss = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                steps += 1
    return steps


def _worker(args) -> int:
    configs, x, y, epochs, width, batch_size = args
    torch.set_num_threads(1)
    return train_sequential(configs, x, y, epochs, width, batch_size)


def train_two_processes(configs, x, y, epochs, width, batch_size) -> float:
    """Half the members in each of 2 single-thread processes; returns wall seconds (pool start excluded)."""
    halves = [configs[0::2], configs[1::2]]
    with mp.get_context("spawn").Pool(2, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        pool.map(abs, [0, 1])  # start both interpreters before timing
        start = time.perf_counter()
        pool.map(_worker, [(h, x, y, epochs, width, batch_size) for h in halves])
        return time.perf_counter() - start


def train_population(configs, x, y, epochs, width, batch_size) -> int:
    pop = Population(MLP(40, 10, hidden=(width, width)), configs, seed=0, device=x.device)
    pop.fit((x, y), epochs=epochs, batch_size=batch_size, progress="off")
    return pop.member_steps_


def matmul_peak(
    threads: int, sizes: tuple[int, ...] = (1024, 2048), repeats: int = 10, device: Any = "cpu"
) -> float:
    """Best fp32 GFLOP/s of square matmuls with ``threads`` threads (best over sizes and repeats).

    A single sample is easily halved by a neighbour on a shared 2-core machine, which would flatter
    the fraction of peak; main() samples before and after the runs and keeps the best.
    """
    best_rate = 0.0
    for size in sizes:
        a, b, out = _square_operands(threads, size, device)
        best = float("inf")
        for _ in range(repeats):
            _sync(device)
            start = time.perf_counter()
            torch.mm(a, b, out=out)
            _sync(device)
            best = min(best, time.perf_counter() - start)
        best_rate = max(best_rate, 2 * size**3 / best / 1e9)
    return best_rate


def matmul_sustained(threads: int, seconds: float, size: int = 1024, device: Any = "cpu") -> float:
    """Mean fp32 GFLOP/s of back-to-back square matmuls over ``seconds``: what the machine sustains
    over a stretch as long as a training run, where :func:`matmul_peak` keeps its fastest moment."""
    a, b, out = _square_operands(threads, size, device)
    _sync(device)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10):
            torch.mm(a, b, out=out)
        count += 10
        _sync(device)
    return 2 * size**3 * count / (time.perf_counter() - start) / 1e9


def _square_operands(threads: int, size: int, device: Any) -> tuple[torch.Tensor, ...]:
    """Set ``threads`` intra-op threads; two random ``size``-square matrices and an output, warmed up."""
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    out = torch.empty(size, size, device=device)
    torch.mm(a, b, out=out)
    return a, b, out


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, *args) -> tuple[float, int]:
    """Wall seconds (the device's queued work included) and the return value of ``fn(*args)``."""
    _sync(device)
    start = time.perf_counter()
    result = fn(*args)
    _sync(device)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    try:
        device = torch.device(args.device)
    except RuntimeError:
        parser.error(f"--device: {args.device!r} is not a torch device; use cpu or cuda")
    if device.type not in ("cpu", "cuda"):
        parser.error(f"--device: {args.device!r} is not supported; use cpu or cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available here")
    gpu = device.type == "cuda"
    sizes = (4096, 8192) if gpu else (1024, 2048)

    x, y = load_mnist1d()
    configs = grid(args.members)
    common = (configs, x.to(device), y.to(device), args.epochs, args.width, args.batch_size)
    peak = matmul_peak(args.threads, sizes, device=device)
    # Multiply-adds per example of one member: 40W + W^2 + 10W; forward + backward = 3 x 2 FLOPs each.
    w = args.width
    flops = 6 * (40 * w + w * w + 10 * w) * len(x) * args.epochs * args.members

    torch.set_num_threads(args.threads)
    seq, seq_steps = timed(train_sequential, device, *common)
    two = None if gpu else train_two_processes(configs, x, y, args.epochs, args.width, args.batch_size)
    torch.set_num_threads(args.threads)
    pop, pop_steps = timed(train_population, device, *common)
    sustained = matmul_sustained(args.threads, min(pop, 10.0), sizes[0], device=device)
    peak = max(peak, matmul_peak(args.threads, sizes, device=device))
    if seq_steps != pop_steps:
        raise RuntimeError(
            f"unfair comparison: {seq_steps} sequential vs {pop_steps} population member-steps"
        )

    member_epochs = args.members * args.epochs
    rows = [("(a) sequential", seq), ("(b) 2 processes x 1 thread", two), ("(c) population", pop)]
    where = torch.cuda.get_device_name(device) if gpu else f"{args.threads} threads"
    print(
        f"K={args.members} W={args.width} E={args.epochs} n={len(x)} device={device} "
        f"peak={peak:.1f} GFLOP/s (fp32 matmul, {where})"
    )
    print(f"{'way':30s} {'wall s':>9s} {'ms/member-epoch':>16s} {'GFLOP/s':>9s} {'% peak':>7s}")
    for name, wall in rows:
        if wall is None:
            print(f"{name:30s} {'(skipped on a GPU)':>9s}")
            continue
        rate = flops / wall / 1e9
        print(
            f"{name:30s} {wall:9.2f} {1e3 * wall / member_epochs:16.2f} {rate:9.1f} {100 * rate / peak:6.1f}%"
        )
    result = {
        "members": args.members,
        "epochs": args.epochs,
        "width": args.width,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "device": str(device),
        "train_examples": len(x),
        "member_steps": pop_steps,
        "flops": flops,
        "matmul_peak_gflops": peak,
        "sequential_wall_s": seq,
        "two_processes_wall_s": two,
        "population_wall_s": pop,
        "speedup_vs_sequential": seq / pop,
        "speedup_vs_two_processes": None if two is None else two / pop,
        "population_gflops": flops / pop / 1e9,
        "fraction_of_peak": flops / pop / 1e9 / peak,
        "sustained_matmul_gflops": sustained,
        "fraction_of_sustained": flops / pop / 1e9 / sustained,
        "ms_per_member_epoch": {
            "sequential": 1e3 * seq / member_epochs,
            "two_processes": None if two is None else 1e3 * two / member_epochs,
            "population": 1e3 * pop / member_epochs,
        },
    }
    print(
        f"sustained matmul right after (c), over {min(pop, 10.0):.1f} s: {sustained:.1f} GFLOP/s; "
        f"(c) ran at {100 * result['fraction_of_sustained']:.1f}% of it"
    )
    print(
        f"speedup vs sequential {result['speedup_vs_sequential']:.2f}x"
        + ("" if two is None else f", vs 2 processes {result['speedup_vs_two_processes']:.2f}x")
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
