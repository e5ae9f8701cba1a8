#!/usr/bin/python3
"""PyTorch CPU reference: the same DeepFM (DESIGN.md section 3) on the same data.

One embedding table with per-field offsets (rows [w_k, e_k] of width D+1),
sparse gradients with SparseAdam for the table and Adam for the rest, trained
one epoch on pre-parsed tensors. Prints one JSON line with samples/s of the
training loop, AUC, logloss and accuracy on the eval file.

Run with Debian's interpreter (/usr/bin/python3) and python3-torch, with
libopenblas0-pthread installed so torch's BLAS is OpenBLAS.
"""
import argparse
import csv
import json
import math
import os
import sys
import time

import numpy as np
import torch

NUM_DENSE, NUM_FIELDS = 13, 26


def load(path, vocab, grow):
    """Parses a DeepRec-schema CSV (or Criteo TSV) into numpy arrays.

    Categorical tokens map to per-field ids; ids are assigned while reading the
    training file, and eval tokens never seen in training share id 0 of their
    field (the PS version gives such keys their deterministic initial row).
    """
    sep = "\t" if path.endswith((".txt", ".tsv")) else ","
    labels, dense, cats = [], [], []
    with open(path, newline="") as f:
        for row in csv.reader(f, delimiter=sep):
            if len(row) != 1 + NUM_DENSE + NUM_FIELDS:
                continue
            labels.append(float(row[0]))
            dense.append([math.log1p(max(float(v), 0.0)) if v else 0.0 for v in row[1:14]])
            ids = []
            for fi, tok in enumerate(row[14:]):
                m = vocab[fi]
                i = m.get(tok)
                if i is None:
                    if grow:
                        i = len(m) + 1
                        m[tok] = i
                    else:
                        i = 0
                ids.append(i)
            cats.append(ids)
    return (np.asarray(labels, np.float32), np.asarray(dense, np.float32),
            np.asarray(cats, np.int64))


class DeepFM(torch.nn.Module):
    def __init__(self, field_sizes, dim, hidden):
        super().__init__()
        offsets = np.concatenate([[0], np.cumsum(field_sizes)[:-1]])
        self.register_buffer("offsets", torch.tensor(offsets, dtype=torch.int64))
        self.dim = dim
        self.table = torch.nn.Embedding(int(sum(field_sizes)), dim + 1, sparse=True)
        torch.nn.init.normal_(self.table.weight, 0.0, 0.01)
        self.w_dense = torch.nn.Parameter(torch.zeros(NUM_DENSE))
        self.bias = torch.nn.Parameter(torch.zeros(1))
        layers, width = [], NUM_FIELDS * dim + NUM_DENSE
        for h in hidden:
            lin = torch.nn.Linear(width, h)
            torch.nn.init.xavier_uniform_(lin.weight)
            torch.nn.init.zeros_(lin.bias)
            layers += [lin, torch.nn.ReLU()]
            width = h
        out = torch.nn.Linear(width, 1)
        torch.nn.init.xavier_uniform_(out.weight)
        torch.nn.init.zeros_(out.bias)
        layers.append(out)
        self.dnn = torch.nn.Sequential(*layers)

    def forward(self, dense, cats):
        rows = self.table(cats + self.offsets)          # B x F x (D+1)
        w, e = rows[..., 0], rows[..., 1:]
        linear = self.bias + w.sum(1) + dense @ self.w_dense
        s = e.sum(1)
        fm = 0.5 * (s * s - (e * e).sum(1)).sum(1)
        dnn = self.dnn(torch.cat([e.reshape(e.shape[0], -1), dense], 1)).squeeze(1)
        return linear + fm + dnn


def auc(scores, labels):
    order = np.argsort(scores, kind="mergesort")
    s, y = scores[order], labels[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[i:j + 1] = (i + j) / 2.0 + 1
        i = j + 1
    pos = y.sum()
    neg = len(y) - pos
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data_location", default="./data")
    ap.add_argument("--batch_size", type=int, default=512)
    ap.add_argument("--learning_rate", type=float, default=0.001)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--hidden_units", default="1024,256,32")
    ap.add_argument("--embedding_dim", type=int, default=16)
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_path = next(os.path.join(args.data_location, n) for n in ("train.csv", "train.txt")
                      if os.path.exists(os.path.join(args.data_location, n)))
    eval_path = train_path.replace("train.", "eval.")
    vocab = [dict() for _ in range(NUM_FIELDS)]
    t0 = time.time()
    ytr, xtr, ctr = load(train_path, vocab, True)
    yev, xev, cev = load(eval_path, vocab, False)
    parse_s = time.time() - t0
    model = DeepFM([len(m) + 1 for m in vocab], args.embedding_dim,
                   [int(h) for h in args.hidden_units.split(",")])
    sparse_opt = torch.optim.SparseAdam([model.table.weight], lr=args.learning_rate)
    dense_opt = torch.optim.Adam([p for n, p in model.named_parameters() if n != "table.weight"],
                                 lr=args.learning_rate)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    ytr_t, xtr_t, ctr_t = torch.from_numpy(ytr), torch.from_numpy(xtr), torch.from_numpy(ctr)
    n, B = len(ytr), args.batch_size
    t0 = time.time()
    for start in range(0, n, B):
        sl = slice(start, min(start + B, n))
        loss = loss_fn(model(xtr_t[sl], ctr_t[sl]), ytr_t[sl])
        sparse_opt.zero_grad()
        dense_opt.zero_grad()
        loss.backward()
        sparse_opt.step()
        dense_opt.step()
    train_s = time.time() - t0
    with torch.no_grad():
        probs = torch.cat([torch.sigmoid(model(torch.from_numpy(xev[i:i + 4096]),
                                               torch.from_numpy(cev[i:i + 4096])))
                           for i in range(0, len(yev), 4096)]).numpy().astype(np.float64)
    p = np.clip(probs, 1e-7, 1 - 1e-7)
    result = {
        "framework": "pytorch " + torch.__version__,
        # Debian's torch calls the system libblas.so.3; the alternative says which.
        "blas": os.path.realpath("/etc/alternatives/libblas.so.3-x86_64-linux-gnu"),
        "threads": args.threads,
        "train_rows": int(n),
        "train_seconds": train_s,
        "train_samples_per_sec": n / train_s,
        "parse_seconds": parse_s,
        "auc": auc(probs, yev),
        "logloss": float(-np.mean(yev * np.log(p) + (1 - yev) * np.log(1 - p))),
        "accuracy": float(np.mean((probs > 0.5) == (yev > 0.5))),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
