#!/usr/bin/python3
"""A scaling model of a DeepFM job: samples/s for N workers x M shards.

It is built from costs measured on one machine (bench/scale_measure.sh):
  - a shard's own work per key for Pull and Push+apply (ps_bench, in-process),
  - the cost of one request over loopback gRPC (ps_bench, 1-key requests),
  - the 1x1 job: the worker's step time, CPU per step, bytes per step
    and the batch's unique keys.
Three things can set the pace of a job:
  workers   N / T_w: each worker's step time T_w (its DNN, one core);
  shards    the hottest shard's CPU per worker-step (keys routed to it, the
            dense variables it holds, two requests) against its cores;
  network   the hottest shard's bytes per worker-step against its NIC, and
            a worker's bytes per step against its own.
Keys are Zipf-distributed per field; the hottest shard's share of a batch's
unique keys comes from the expected load of every key (its chance to be in
a batch) hashed to routing slots, as the job routes them (slot = hash mod
4096, shard = slot mod M). Dense variables sit whole on a shard chosen by
name today (the 429x1024 kernel, 1.76 MB, on one shard), or in 1/M slices
per shard when partitioned (issue 13, item 3): both are projected.

On one machine every process shares its cores, so the check against the
measured local jobs adds a fourth bound: cores / CPU per step, the 1x1 job's
CPU per step plus two requests per step for every further shard.

Assumptions, each a flag: the Zipf exponent and vocabulary per field, the
shard machine's cores, and the rate at which a shard copies request bytes
in and out (protobuf bytes fields: parse and serialize are copies).
"""
import argparse
import bisect
import json
import math
import os
import random

DIM = 16
ROW_BYTES = (DIM + 1) * 4  # a key's row or gradient on the wire (fp32)
FIELDS = 26
SLOTS = 4096


def dense_variables(hidden=(1024, 256, 32), fields=FIELDS, dense=13):
    """(name, floats, rows) of every dense variable of the model."""
    sizes, width = [], fields * DIM + dense
    for i, h in enumerate(list(hidden) + [1]):
        sizes.append((f"dnn/kernel{i}", width * h, width))
        sizes.append((f"dnn/bias{i}", h, h))
        width = h
    sizes += [("linear/w_dense", dense, dense), ("linear/bias", 1, 1)]
    return sizes


SLICE_BYTES = 64 << 10  # --dense_slice_kb's default


def slices(floats, rows, m):
    """Slices common/dense_partition.cc cuts a variable into over m shards."""
    return max(1, min(m, rows, 4 * floats // SLICE_BYTES))


def slot_loads(batch, zipf_s, vocab, seed=1):
    """Expected unique keys per batch in each routing slot."""
    rng = random.Random(seed)
    weights = [1.0 / (r ** zipf_s) for r in range(1, vocab + 1)]
    total = sum(weights)
    loads = [0.0] * SLOTS
    for _ in range(FIELDS):
        for w in weights:
            p = 1.0 - (1.0 - w / total) ** batch  # the key is in the batch
            loads[rng.randrange(SLOTS)] += p
    return loads


def hottest_share(loads, m):
    """The hottest shard's share of a batch's unique keys, and the skew."""
    per = [0.0] * m
    for s, l in enumerate(loads):
        per[s % m] += l
    total = sum(per)
    return max(per) / total, max(per) / (total / m)


class Costs:
    def __init__(self, a):
        self.batch = a.batch
        self.unique = a.unique_keys  # per worker step
        self.step_s = a.worker_step_ms / 1e3
        self.pull_key_s = 1.0 / a.shard_pull_keys_per_s
        self.push_key_s = 1.0 / a.shard_push_keys_per_s
        self.request_s = a.request_us / 1e6
        self.copy_bps = a.copy_gbps * 1e9
        self.dense_apply_s = a.dense_apply_us / 1e6
        self.shard_cores = a.shard_cores
        self.dense = dense_variables()
        self.dense_bytes = 4 * sum(n for _, n, _ in self.dense)
        self.sparse_bytes = self.unique * ROW_BYTES

    def dense_hot_bytes(self, m, partitioned):
        if m == 1:
            return self.dense_bytes
        if partitioned:
            # As if the largest slice of every variable met on one shard: an
            # upper bound on the plan's hottest shard.
            return sum(4 * n / slices(n, rows, m) for _, n, rows in self.dense)
        biggest = 4 * max(n for _, n, _ in self.dense)
        return biggest + (self.dense_bytes - biggest) / m  # the rest spread by name

    def shard_cpu_s(self, share, m, partitioned):
        """CPU seconds the hottest shard spends per worker step."""
        keys = self.unique * share
        dense = self.dense_hot_bytes(m, partitioned)
        return (keys * (self.pull_key_s + self.push_key_s)
                + self.dense_apply_s * dense / self.dense_bytes
                + 2 * (keys * ROW_BYTES + dense) / self.copy_bps
                + 2 * self.request_s / 2)  # the server's half of two requests

    def shard_bytes(self, share, m, partitioned):
        """The hottest shard's bytes per worker step, each direction."""
        return self.unique * share * ROW_BYTES + self.dense_hot_bytes(m, partitioned)


def project(c, n, m, gbps, share, partitioned):
    """(samples/s, the bound that sets it) for n workers and m shards."""
    bw = gbps * 1e9 / 8
    bounds = {
        "workers": n / c.step_s,
        "shard CPU": c.shard_cores / c.shard_cpu_s(share, m, partitioned),
        "shard NIC": bw / c.shard_bytes(share, m, partitioned),
        "worker NIC": n * bw / (c.sparse_bytes + c.dense_bytes),
    }
    which = min(bounds, key=bounds.get)
    return c.batch * bounds[which], which


def load_measured(d):
    def j(*p):
        with open(os.path.join(d, *p)) as f:
            return json.load(f)

    jobs = {}
    for cfg in ("1x1", "1x2", "2x2", "2x4"):
        if not os.path.exists(os.path.join(d, cfg, "metrics.json")):
            continue
        m, w, t = j(cfg, "metrics.json"), j(cfg, "worker0.json"), j(cfg + ".time.json")
        jobs[cfg] = {"sps": m["train_samples_per_sec"], "steps": m["global_step"],
                     "rows": m["train_rows"], "cpu_s": t["user_s"] + t["sys_s"],
                     "train_s": m["train_seconds"], "worker": w}
    step = {}
    if os.path.exists(os.path.join(d, "dnn_step.json")):
        for b in j("dnn_step.json")["benchmarks"]:
            step[b["name"].split("/")[2]] = b["items_per_second"]
    return j("ps_bench.json"), j("ps_bench_req.json"), jobs, step


def print_shard_bytes(d):
    """Bytes per step each shard moved in the measured jobs, and its share
    of the dense bytes (worker0.json's shard_bytes_per_step and
    shard_dense_bytes_per_step)."""
    rows = []
    for cfg in ("1x2", "2x2", "2x4", "1x4", "1x4_whole"):
        path = os.path.join(d, cfg, "worker0.json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            w = json.load(f)
        if "shard_dense_bytes_per_step" not in w:
            continue
        rows.append((cfg, w["shard_bytes_per_step"], w["shard_dense_bytes_per_step"]))
    if not rows:
        return
    print("\nbytes per step per shard, worker 0 (pull + push, both directions); the largest "
          "shard's share of the dense bytes:")
    for cfg, total, dense in rows:
        share = max(dense) / max(1, sum(dense))
        label = cfg + (" (--dense_slice_kb=0)" if cfg.endswith("_whole") else "")
        print(f"  {label:<28}" + " ".join(f"{b / 1e6:>7.3f} MB" for b in total) +
              f"   dense: " + " ".join(f"{b / 1e6:.3f}" for b in dense) + f" MB, max {share:.1%}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--measured", help="folder bench/scale_measure.sh filled; its figures "
                    "replace the cost flags below")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--unique_keys", type=float, default=7000, help="unique keys per batch")
    ap.add_argument("--worker_step_ms", type=float, default=16.0)
    ap.add_argument("--shard_pull_keys_per_s", type=float, default=9.5e6)
    ap.add_argument("--shard_push_keys_per_s", type=float, default=5.1e6)
    ap.add_argument("--request_us", type=float, default=120.0,
                    help="one request's round trip over gRPC, both sides' CPU")
    ap.add_argument("--dense_apply_us", type=float, default=450.0,
                    help="adamasync over all 709,664 DNN parameters (ps_micro_bench)")
    ap.add_argument("--copy_gbps", type=float, default=4.0,
                    help="GB/s a shard parses or serializes request bytes (assumed)")
    ap.add_argument("--shard_cores", type=float, default=8.0, help="cores of a shard's machine")
    ap.add_argument("--zipf", type=float, default=1.1)
    ap.add_argument("--vocab", type=int, default=100000, help="distinct values per field")
    ap.add_argument("--cores", type=int, default=os.cpu_count(),
                    help="cores of the machine the measured local jobs ran on")
    a = ap.parse_args()

    jobs = {}
    if a.measured:
        psb, req, jobs, step = load_measured(a.measured)
        a.shard_pull_keys_per_s = psb["in_process"]["1"]["pull_keys_per_s"]
        a.shard_push_keys_per_s = psb["in_process"]["1"]["push_keys_per_s"]
        a.request_us = 1e6 / req["grpc"]["1"]["pull_keys_per_s"]  # 1 key a request
        one = jobs["1x1"]
        a.batch = round(one["rows"] / one["steps"])
        a.worker_step_ms = 1e3 * one["train_s"] / one["steps"]
        w = one["worker"]
        dense_bytes = 4 * sum(n for _, n, _ in dense_variables())
        a.unique_keys = max(1.0, (w["pull_bytes_per_step"] - dense_bytes) / ROW_BYTES)
    c = Costs(a)
    print(f"costs: batch {c.batch}, {c.unique:.0f} unique keys/step ({c.sparse_bytes / 1e6:.2f} MB), "
          f"dense {c.dense_bytes / 1e6:.2f} MB/step each way; worker step {c.step_s * 1e3:.1f} ms; "
          f"shard pull {1e6 * c.pull_key_s * 1e3:.0f} ns/key, push {1e6 * c.push_key_s * 1e3:.0f} ns/key, "
          f"request {c.request_s * 1e6:.0f} us, dense apply {c.dense_apply_s * 1e6:.0f} us, "
          f"copy {a.copy_gbps} GB/s (assumed), shard machine {a.shard_cores:g} cores")

    loads = slot_loads(c.batch, a.zipf, a.vocab)
    shares = {m: hottest_share(loads, m) for m in (1, 2, 4, 8, 16, 32, 64, 128)}
    print("hottest shard's share of a batch's unique keys (Zipf %.2f, %d values a field): %s" % (
        a.zipf, a.vocab, ", ".join(f"M={m} x{s:.3f}" for m, (_, s) in shares.items())))

    if jobs:
        print(f"\ncheck against the local jobs measured here ({a.cores} cores shared by every "
              "process; bound: min(N / worker step, cores / CPU per step)):")
        one = jobs["1x1"]
        cpu_step = one["cpu_s"] / one["steps"]
        print(f"  1x1 calibrates: worker step {c.step_s * 1e3:.2f} ms, CPU per step "
              f"{cpu_step * 1e3:.2f} ms (all processes); each further shard adds two requests "
              f"({2 * c.request_s * 1e3:.2f} ms)")
        print(f"  {'job':<6}{'measured':>10}{'predicted':>11}{'error':>8}  bound")
        errors = []
        for cfg, jb in jobs.items():
            n, m = map(int, cfg.split("x"))
            cpu = cpu_step + 2 * (m - 1) * c.request_s
            bounds = {"workers": n / c.step_s, "cores": a.cores / cpu}
            which = min(bounds, key=bounds.get)
            pred = c.batch * bounds[which]
            err = (pred - jb["sps"]) / jb["sps"]
            if cfg != "1x1":
                errors.append(abs(err))
            print(f"  {cfg:<6}{jb['sps']:>10.0f}{pred:>11.0f}{err:>+8.1%}  {which}")
        if errors:
            print(f"  mean absolute error over the jobs not used to calibrate: "
                  f"{sum(errors) / len(errors):.1%}")
        if "t1" in step and "t2" in step:
            print(f"  (a DNN step with 2 threads runs {step['t2'] / step['t1']:.2f}x one thread here: "
                  "where that is well below 2, the cores share execution units and CPU time per "
                  "step grows with load, which this bound does not model)")

    if a.measured:
        print_shard_bytes(a.measured)

    ns = (1, 2, 4, 8, 16, 32, 64, 128, 256)
    ms = (1, 2, 4, 8, 16, 32, 64)
    for partitioned in (False, True):
        layout = ("dense variables cut in slices over the shards (--dense_slice_kb=64, the default)"
                  if partitioned else "dense variables whole, by name (--dense_slice_kb=0, as before)")
        for gbps in (10, 25):
            print(f"\nprojection, {gbps} Gbit/s, {layout}: samples/s (bound) for N workers x M shards")
            print(f"  {'N':>4}" + "".join(f"{'M=' + str(m):>22}" for m in ms))
            for n in ns:
                cells = []
                for m in ms:
                    sps, which = project(c, n, m, gbps, shares[m][0], partitioned)
                    cells.append(f"{sps:>12,.0f} {which:>9}")
                print(f"  {n:>4}" + "".join(cells))
            best = [max((project(c, n, m, gbps, shares[m][0], partitioned) + (m,) for m in ms),
                        key=lambda t: t[0]) for n in ns]
            stop = next((ns[i] for i in range(1, len(ns))
                         if best[i][0] < 1.1 * best[i - 1][0]), None)
            if stop:
                sps, which, m = best[ns.index(stop)]
                print(f"  stops scaling at N={stop}: doubling the workers gains under 10 % even "
                      f"with the best M<=64 ({m}); {which} sets the pace at {sps:,.0f} samples/s")
            else:
                print("  scales through N=256 with M<=64")


if __name__ == "__main__":
    main()
