#!/usr/bin/python3
"""Prints the comparison table from the files bench/compare.sh leaves in OUT."""
import json
import os
import re
import sys

FLOP_PER_SAMPLE = 3 * 2 * 709664  # DESIGN.md section 3
RUNS = {
    "fp32_ps1": "fp32, 1x1",
    "bf16_ps1": "bf16, 1x1",
    "fp32_sa": "fp32, stand-alone",
    "bf16_sa": "bf16, stand-alone",
    "bf16_sa_fp32gemm": "bf16, s-a, fp32 GEMM",
    "fp32_ps2": "fp32, 1x2",
    "fp32_ps1_t1": "fp32, 1x1, 1 thread",
}


def worker_json(job):
    with open(os.path.join(job, "worker0.json")) as f:
        return json.load(f)


def metrics(job):
    with open(os.path.join(job, "metrics.json")) as f:
        return json.load(f)


def gemm_rates(path, isa):
    """Time-weighted GFLOP/s of one step's nine GEMMs, per thread count."""
    with open(path) as f:
        data = json.load(f)
    per = {}
    for b in data["benchmarks"]:
        name = b["name"]
        if b.get("aggregate_name") != "median" or f"Gemm/{isa}/" not in name:
            continue
        m = re.search(r"M(\d+)_N(\d+)_K(\d+)/t(\d+)", name)
        mm, nn, kk, t = map(int, m.groups())
        seconds = b["real_time"] * {"ns": 1e-9, "us": 1e-6, "ms": 1e-3}[b["time_unit"]]
        flop, time = per.get(t, (0.0, 0.0))
        per[t] = (flop + 2.0 * mm * nn * kk, time + seconds)
    return {t: flop / time / 1e9 for t, (flop, time) in per.items()}


ELM_RUNS = {
    "fp32_ps1": "fp32, 1x1",
    "bf16_ps1": "bf16, 1x1",
    "fp32_sa": "fp32, stand-alone",
    "bf16_sa": "bf16, stand-alone",
    "tf_ps1": "--tf (buckets, adam), 1x1",
}


def elm_table(out, preset):
    """The ELM presets: each run against the PyTorch port of the same network."""
    path = os.path.join(out, f"torch_{preset}.json")
    torch = {}
    if os.path.exists(path):
        with open(path) as f:
            torch = json.loads(f.read().strip().splitlines()[-1])
    print(f"\n{preset}: samples/s end to end (parsing included) against the PyTorch port's "
          "training loop over pre-parsed tensors")
    hdr = f"{'run':<30}{'samples/s':>10}{'x torch':>8}{'AUC':>9}{'logloss':>9}  step split (us/step)"
    print(hdr)
    print("-" * len(hdr))
    base = torch.get("samples_per_s")
    if torch:
        print(f"{'pytorch port (2 threads)':<30}{base:>10.0f}{1.0:>8.2f}{torch['auc']:>9.4f}"
              f"{torch['logloss']:>9.4f}  parse {torch['parse_seconds']:.0f} s, not counted")
    for name, label in ELM_RUNS.items():
        job = os.path.join(out, f"{preset}_{name}")
        if not os.path.exists(os.path.join(job, "metrics.json")):
            continue
        m, w = metrics(job), worker_json(job)
        sps = m["train_samples_per_sec"]
        ratio = f"{sps / base:>8.2f}" if base else f"{'':>8}"
        split = " ".join(f"{k} {v:.0f}" for k, v in w["split_us"].items())
        print(f"{label:<30}{sps:>10.0f}{ratio}{m['auc']:>9.4f}{m['logloss']:>9.4f}  {split}")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--preset":
        elm_table(sys.argv[3], sys.argv[2])
        return
    out = sys.argv[1]
    torch = {}
    if os.path.exists(os.path.join(out, "torch.json")):
        with open(os.path.join(out, "torch.json")) as f:
            torch = json.loads(f.read().strip().splitlines()[-1])
    isa = worker_json(os.path.join(out, "fp32_ps1"))["dnn_isa"]
    rates = gemm_rates(os.path.join(out, "gemm.json"), isa)
    r1, r2 = rates.get(1, float("nan")), rates.get(2, float("nan"))
    print(f"\nGEMM rate of this build ({isa} path), the three layer shapes at batch 512: "
          f"{r1:.1f} GFLOP/s on 1 thread, {r2:.1f} GFLOP/s on 2 threads")
    if torch:
        print(f"PyTorch reference: {torch['framework']}, {torch['threads']} threads, BLAS {torch['blas']}")
    hdr = (f"{'run':<28}{'samples/s':>10}{'x torch':>8}{'GEMM bound 1t':>14}{'2t':>6}"
           f"{'AUC':>9}{'logloss':>9}{'compute us':>11}{'wait %':>7}{'pull B/step':>12}{'push B/step':>12}")
    print(hdr)
    print("-" * len(hdr))
    base = torch.get("train_samples_per_sec")
    if torch:
        sps = torch["train_samples_per_sec"]
        print(f"{'pytorch (2 threads)':<28}{sps:>10.0f}{1.0:>8.2f}{sps * FLOP_PER_SAMPLE / 1e9 / r1:>14.0%}"
              f"{sps * FLOP_PER_SAMPLE / 1e9 / r2:>6.0%}{torch['auc']:>9.4f}{torch['logloss']:>9.4f}"
              f"{'':>11}{'':>7}{'':>12}{'':>12}")
    for name in RUNS:
        job = os.path.join(out, name)
        if not os.path.exists(os.path.join(job, "metrics.json")):
            continue
        m, w = metrics(job), worker_json(job)
        sps = m["train_samples_per_sec"]
        sp = w["split_us"]
        step = sp["wait"] + sp["compute"] + sp["handoff"]
        native = ", native" if w.get("native_bf16") else ""
        label = f"{RUNS[name]} ({w.get('dnn_threads', 1)}t{native})"
        ratio = f"{sps / base:>8.2f}" if base else f"{'':>8}"
        print(f"{label:<28}{sps:>10.0f}{ratio}{sps * FLOP_PER_SAMPLE / 1e9 / r1:>14.0%}"
              f"{sps * FLOP_PER_SAMPLE / 1e9 / r2:>6.0%}{m['auc']:>9.4f}{m['logloss']:>9.4f}"
              f"{sp['compute']:>11.0f}{sp['wait'] / step:>7.1%}{w['pull_bytes_per_step']:>12}"
              f"{w['push_bytes_per_step']:>12}")
    print("\nstep split of the worker (us per step; prefetch and push run on their own threads):")
    for name in RUNS:
        job = os.path.join(out, name)
        if os.path.exists(os.path.join(job, "worker0.json")):
            sp = worker_json(job)["split_us"]
            print(f"  {name:<12} " + " ".join(f"{k} {v:.0f}" for k, v in sp.items()))


if __name__ == "__main__":
    main()
