"""PyTorch side of the PiSSA SVD benchmark (bench/svd.sh): the same work as
PEFT's PiSSA init on one N x N layer -- torch.linalg.svd (init_lora_weights="pissa") and
torch.svd_lowrank(q=r, niter=K) ("pissa_niter_K"), each followed by the factors and the
residual update W - s B A. Prints "impl,method,r,seconds,rel_err" lines like svd_bench.

usage: svd_torch.py [N=4096] [niter=4] [ranks=16,128] [threads=2]
"""
import sys
import time

import torch


def pissa(weight, r, scale, niter):
    if niter < 0:
        V, S, Uh = torch.linalg.svd(weight, full_matrices=False)
        Vr, Sr, Uhr = V[:, :r], S[:r], Uh[:r]
    else:
        Vr, Sr, Ur = torch.svd_lowrank(weight, q=r, niter=niter)
        Uhr = Ur.t()
    Sr = Sr / scale
    A = torch.diag(torch.sqrt(Sr)) @ Uhr
    B = Vr @ torch.diag(torch.sqrt(Sr))
    return A, B, weight - scale * B @ A, Sr


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
    niter = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    ranks = [int(x) for x in (sys.argv[3] if len(sys.argv) > 3 else "16,128").split(",")]
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    torch.set_num_threads(threads)
    print(f"# torch {torch.__version__}, threads {torch.get_num_threads()}", file=sys.stderr)
    torch.manual_seed(1)
    for it in (-1, niter):  # warm-up (thread pools, first-call dispatch) on a small matrix
        pissa(torch.randn(256, 256), 8, 1.0, it)
    w0 = torch.randn(n, n, dtype=torch.float32) / n ** 0.5
    for r in ranks:
        s_exact = None
        for it in (-1, niter):
            w = w0.clone()
            t0 = time.perf_counter()
            _, _, _, sr = pissa(w, r, 1.0, it)
            dt = time.perf_counter() - t0
            if it < 0:
                s_exact, err = sr, "ref"
            else:
                err = f"{(torch.linalg.norm(sr - s_exact) / torch.linalg.norm(s_exact)).item():.2e}"
            name = "exact" if it < 0 else f"niter_{it}"
            print(f"torch,{name},{r},{dt:.3f},{err}", flush=True)


if __name__ == "__main__":
    main()
