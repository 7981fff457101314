"""Why a 2:4-sparse model is fast or slow: one linear layer of a model's shape, dense against
PyTorch's semi-structured sparse kernels (cuSPARSELt, and CUTLASS where this PyTorch has it),
at the row counts of decoding (batch size) and of prefill (batch x prompt tokens). GPU only.

    python benchmarks/sparse_linear.py --in-features 4096 --out-features 14336 --rows 8 64 16384

Prints, per row count, the median wall time of one call of each kind (launch and host-side
work included, as in a generate loop) and its ratio to dense, all measured in this run, after a
warm-up, the kinds alternating.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--in-features", type=int, default=2048)
    parser.add_argument("--out-features", type=int, default=8192)
    parser.add_argument("--rows", type=int, nargs="+", default=[8, 64, 2048, 16384])
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16"])
    parser.add_argument("--calls", type=int, default=20, help="back-to-back calls per timing")
    parser.add_argument("--rounds", type=int, default=7, help="timings per kind, the kinds alternating")
    args = parser.parse_args()
    import torch
    from torch.sparse import SparseSemiStructuredTensor, to_sparse_semi_structured

    from mlflow_energy.inference.pruning import keep_two_of_four

    if not torch.cuda.is_available():
        print("sparse_linear: no GPU on this machine; PyTorch's semi-structured sparse kernels run on CUDA GPUs only.")
        return
    dtype = getattr(torch, args.dtype)
    linear = torch.nn.Linear(args.in_features, args.out_features, bias=False, device="cuda", dtype=dtype)
    with torch.no_grad():
        keep_two_of_four(linear)
    kinds = {"dense": linear.weight.detach()}
    for backend, force_cutlass in (("cusparselt", False), ("cutlass", True)):
        SparseSemiStructuredTensor._FORCE_CUTLASS = force_cutlass
        try:
            sparse = to_sparse_semi_structured(linear.weight.detach())
            torch.nn.functional.linear(torch.ones(64, args.in_features, device="cuda", dtype=dtype), sparse)
            kinds[backend] = sparse
        except (RuntimeError, NotImplementedError) as exc:  # CUTLASS's kernels: compute capability 8.x only
            print(f"{backend}: not available here ({str(exc).splitlines()[0]})")
    SparseSemiStructuredTensor._FORCE_CUTLASS = False
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, {args.dtype}, weight "
          f"{args.out_features}x{args.in_features}, median of {args.rounds} timings of {args.calls} calls")  # fmt: skip
    with torch.inference_mode():
        for rows in args.rows:
            x = torch.randn(rows, args.in_features, device="cuda", dtype=dtype)
            times: dict[str, list[float]] = {kind: [] for kind in kinds}
            for weight in kinds.values():  # warm-up: plans, algorithm choice, caches
                torch.nn.functional.linear(x, weight)
            for _ in range(args.rounds):  # kinds alternate, so drift touches each alike
                for kind, weight in kinds.items():
                    times[kind].append(_ms_per_call(lambda x=x, w=weight: torch.nn.functional.linear(x, w), args.calls))
            dense = statistics.median(times["dense"])
            cells = [f"{kind} {statistics.median(t):.4f} ms ({statistics.median(t) / dense:.2f}x)"
                     for kind, t in times.items()]  # fmt: skip
            print(f"rows {rows}: " + ", ".join(cells))


def _ms_per_call(call: Callable[[], object], calls: int) -> float:
    """Wall time per call over ``calls`` back-to-back calls, synchronized at both ends: launch
    and host-side work count, as they do in a generate loop."""
    import torch

    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(calls):
        call()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / calls * 1000

if __name__ == "__main__":
    main()
