"""Derive the timing numbers of the shipped paper-setup profiles from the cost model.

    python benchmarks/paper_setup_numbers.py

Prints, for both of the Multi-SPIN paper's model pairs, the A100-80GB verification affine fit and
every device class's draft time per token, with the efficiency factors the profiles' comments
state (achieved share of spec-sheet bandwidth and of peak FLOP/s). Nothing here is measured: these
are roofline numbers scaled by assumed efficiencies, reproducible from the catalogs.
"""

from __future__ import annotations

from multispin_cli.hardware import costs
from multispin_cli.hardware.models import resolve_model
from multispin_cli.hardware.roofline import resolve_hardware

CONTEXT = 512  # tokens already in every sequence's cache
SERVER_BW_SHARE, SERVER_FLOP_SHARE, SERVER_OVERHEAD_MS = 0.75, 0.5, 1.2

# device class -> (catalog hardware, bytes per weight value, achieved bandwidth share); drafts run
# with 4-bit weights on every device, as on-device runtimes ship them (a hybrid's recurrent state
# stays float32, as its config says)
DEVICES = {
    "agx-orin": ("Jetson-AGX-Orin", 0.5, 0.7),
    "orin-nano": ("Jetson-Orin-Nano", 0.5, 0.7),
    "laptop": ("Laptop-Core-Ultra-7-155H", 0.5, 0.6),
    "phone": ("Snapdragon-8-Gen-3", 0.5, 0.35),
}


def server(target: str) -> tuple[float, float]:
    """``(verify_base_ms, verify_ms_per_token)`` of ``target`` in bf16 on the A100-80GB."""
    shape = resolve_model(target).shape
    hw = resolve_hardware("A100-80GB")
    bw, flops = hw.bandwidth_bytes_per_s * SERVER_BW_SHARE, hw.flops("bfloat16") * SERVER_FLOP_SHARE
    one = costs.forward_cost(shape, batch=1, new_tokens=1, context=CONTEXT, bytes_per_value=2)
    two = costs.forward_cost(shape, batch=1, new_tokens=2, context=CONTEXT, bytes_per_value=2)
    base_ms = one.bytes / bw * 1e3 + SERVER_OVERHEAD_MS
    # each further token: its matmul FLOP at the achieved rate, plus what it adds to memory traffic
    # beyond the weights (KV reads/writes, and a hybrid's recurrent-state checkpoint)
    per_token_ms = ((two.flop - one.flop) / flops + (two.kv_bytes - one.kv_bytes) / bw) * 1e3
    return base_ms, per_token_ms


def device(draft: str, name: str) -> float:
    """Draft ms per token of ``draft`` on device class ``name``."""
    hw_name, p, share = DEVICES[name]
    hw = resolve_hardware(hw_name)
    shape = resolve_model(draft).shape
    step = costs.forward_cost(shape, batch=1, new_tokens=1, context=CONTEXT, bytes_per_value=p)
    return step.bytes / (hw.bandwidth_bytes_per_s * share) * 1e3


def main() -> None:
    for draft, target in (("tinyllama-1.1b", "llama-2-7b"), ("qwen3.5-0.8b", "qwen3.5-27b")):
        base, slope = server(target)
        print(f"{target} on A100-80GB: verify_base_ms = {base:.1f}, verify_ms_per_token = {slope:.3f}")
        for name in DEVICES:
            print(f"  {draft} on {name}: draft_ms_per_token = {device(draft, name):.2f}")


if __name__ == "__main__":
    main()
