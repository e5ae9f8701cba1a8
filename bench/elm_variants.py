#!/usr/bin/python3
"""From train.py's exact network to the default `elm` preset, step by step.

Writes one feature spec per variant (the elm presets' columns, read from
spec/presets.cc, with the numeric transform and the model section of the
step), trains each stand-alone at --staleness=0 (deterministic) for one
epoch with two seeds, and prints a markdown table of eval AUC read from each
job's metrics.json. Long: a bench, never a test.

  bench/elm_variants.py [--data DIR] [--rows N] [--out DIR] [--seeds 2021,7]
"""
import argparse
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEEPFM = os.path.join(ROOT, "build", "launcher", "deepfm")

# name, what it changes, then the spec: loss, log1p numerics, linear, batch norm,
# fm, final DNN, learning rate.
STEPS = [
    ("elm_exact", "train.py's network: MSE, raw numerics, weightless linear, batch norm",
     ("MSE", False, "WEIGHTLESS", True, "VECTOR", True, 0.001)),
    ("+logloss", "logloss instead of MSE", ("LOGLOSS", False, "WEIGHTLESS", True, "VECTOR", True, 0.001)),
    ("+log1p", "log1p of every numeric input", ("LOGLOSS", True, "WEIGHTLESS", True, "VECTOR", True, 0.001)),
    ("+learned", "learned first-order weights", ("LOGLOSS", True, "LEARNED", True, "VECTOR", True, 0.001)),
    ("-batch_norm = elm", "no batch norm: the default elm preset",
     ("LOGLOSS", True, "LEARNED", False, "VECTOR", True, 0.001)),
]
ABLATIONS = [
    ("elm, raw numerics", ("LOGLOSS", False, "LEARNED", False, "VECTOR", True, 0.001)),
    ("elm, MSE", ("MSE", True, "LEARNED", False, "VECTOR", True, 0.001)),
    ("elm, weightless linear", ("LOGLOSS", True, "WEIGHTLESS", False, "VECTOR", True, 0.001)),
    ("elm, lr 0.003", ("LOGLOSS", True, "LEARNED", False, "VECTOR", True, 0.003)),
    ("elm, lr 0.01", ("LOGLOSS", True, "LEARNED", False, "VECTOR", True, 0.01)),
    ("elm, Criteo's network (scalar FM, no final DNN)",
     ("LOGLOSS", True, "LEARNED", False, "SCALAR", False, 0.001)),
]


def columns():
    src = open(os.path.join(ROOT, "spec", "presets.cc")).read()
    start = src.index('constexpr char kElmColumns[] = R"pb(') + len('constexpr char kElmColumns[] = R"pb(')
    return src[start:src.index(')pb";', start)]


def spec_text(name, cfg):
    loss, log1p, linear, bn, fm, final, _ = cfg
    text = 'name: "%s"\n' % name + columns().replace("$T ", "transform: LOG1P " if log1p else "")
    model = "model {\n  hidden_units: [512, 128, 32]\n"
    if final:
        model += "  final_hidden_units: [128, 64]\n"
    if bn:
        model += "  batch_norm: true\n"
    model += "  fm: %s\n  linear: %s\n  loss: %s\n" % (fm, linear, loss)
    if linear == "WEIGHTLESS":
        # train.py's wide columns, as the elm_exact preset lists them.
        src = open(os.path.join(ROOT, "spec", "presets.cc")).read()
        model += "  " + re.search(r"linear_columns: \[[^\]]*\]", src).group(0) + "\n"
    return text + model + "}\n"


def run(name, cfg, seed, args):
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    spec = os.path.join(args.out, slug + ".pbtxt")
    with open(spec, "w") as f:
        f.write(spec_text(slug, cfg))
    job = os.path.join(args.out, "%s_%d" % (slug, seed))
    subprocess.run(["rm", "-rf", job], check=True)
    cmd = [DEEPFM, "train", "--standalone", "--staleness=0", "--data_location=" + args.data,
           "--feature_spec=" + spec, "--seed=%d" % seed, "--learning_rate=%g" % cfg[6],
           "--checkpoint=" + job]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(os.path.join(job, "metrics.json")) as f:
        return json.load(f)["auc"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="/tmp/deepfm_elm_variants/data")
    p.add_argument("--rows", type=int, default=200000)
    p.add_argument("--out", default="/tmp/deepfm_elm_variants")
    p.add_argument("--seeds", default="2021,7")
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    os.makedirs(args.out, exist_ok=True)
    if not os.path.exists(os.path.join(args.data, "train.csv")):
        subprocess.run([DEEPFM, "gen-data", "--feature_spec=elm", "--rows=%d" % args.rows,
                        "--out=" + args.data], check=True)
    head = "| step | " + " | ".join("AUC seed %d" % s for s in seeds) + " | mean |"
    print(head)
    print("|" + "---|" * (len(seeds) + 2))
    for name, what, cfg in STEPS:
        aucs = [run(name, cfg, s, args) for s in seeds]
        print("| %s: %s | %s | %.4f |" % (name, what, " | ".join("%.4f" % a for a in aucs),
                                           sum(aucs) / len(aucs)), flush=True)
    for name, cfg in ABLATIONS:
        aucs = [run(name, cfg, s, args) for s in seeds]
        print("| %s | %s | %.4f |" % (name, " | ".join("%.4f" % a for a in aucs), sum(aucs) / len(aucs)),
              flush=True)


if __name__ == "__main__":
    sys.exit(main())
