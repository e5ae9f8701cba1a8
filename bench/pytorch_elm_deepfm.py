#!/usr/bin/python3
"""PyTorch CPU reference: DeepRec's tianchi/DeepFM/train.py on the Ali ELM data (DESIGN.md 3b).

A port of train.py's model, used as a speed and AUC reference for the `elm` preset:

- 39-column CSV (no header), train.py's record_defaults for empty cells;
- 15 tables of width 16: 13 hash buckets of --buckets rows (9 shared pairs and
  user_id, district_id, times, timediff_list) and 2 five-word vocabularies
  (time_type, time_type_list); 24 mean-pooled features, 12 numeric inputs;
- dnn 396 -> 512 -> 128 -> 32 and final_dnn 49 -> 128 -> 64 (Linear -> ReLU ->
  BatchNorm), then Linear -> 1; FM as a width-16 vector; linear part without
  weights (the sum of train.py's wide input); loss = mean (sigmoid - y)^2.

Token rules (TF feature columns): an empty single value (after the CSV default)
is dropped; an empty list cell is one "" token, hashed like any other; a word
outside the vocabulary contributes nothing and is not counted by mean pooling; a
feature with no tokens pools to zero.

Deliberate differences from train.py, for a reproducible reference:
- the hash is zlib.crc32(token) mod buckets, not TF's Fingerprint64, so which
  tokens collide differs (the model and sizes do not);
- rows are read in file order (train.py shuffles with a 20,000-row buffer);
- the embedding tables get sparse gradients and SparseAdam, lazy on rows as
  DeepRec's optimizers are (--sparse=false: dense gradients and Adam over
  every bucket row, slower);
- evaluation runs in model.eval(): BatchNorm uses its moving statistics;
  train.py builds its graph with training=True, so its evaluation normalizes
  with the statistics of each eval batch;
- AUC is exact (ranks, ties averaged); "auc_tf1000" repeats tf.metrics.auc's
  1000-threshold trapezoidal estimate, which train.py reports.

Only the training loop over pre-parsed tensors is timed (samples_per_s); the
CSV parse is timed separately (parse_seconds). One JSON line on stdout,
progress on stderr.

Run with Debian's interpreter (/usr/bin/python3) and python3-torch, with
libopenblas0-pthread installed so torch's BLAS is OpenBLAS.
"""
import argparse
import itertools
import json
import os
import sys
import time
import zlib

import numpy as np
import torch

NUM_COLUMNS = 39
DIM_DEFAULT = 16
VOCAB = {w: i for i, w in enumerate(["lunch", "night", "dinner", "tea", "breakfast"])}

# Numeric inputs: (column index, CSV default). The order is the DNN input order.
NUMERIC = [(2, -99.0),   # gender
           (4, 0.0),     # avg_price
           (5, 0.0),     # is_supervip
           (6, 0.0),     # ctr_30
           (7, 0.0),     # ord_30
           (8, 0.0),     # total_amt_30
           (19, 0.0),    # rank_7
           (20, 0.0),    # rank_30
           (21, 0.0),    # rank_90
           (35, 0.0)]    # hours
NUMERIC_LIST_MEAN = [(27, "0"),    # price_list
                     (31, "-0")]   # hours_list
NUM_NUMERIC = len(NUMERIC) + len(NUMERIC_LIST_MEAN)

# Tables, in order: name -> vocabulary (None = hash bucket).
TABLES = ["shop_id", "item_id", "category_1_id", "merge_standard_food_id", "brand_id",
          "shop_aoi_id", "shop_geohash_12", "shop_geohash_6", "city",
          "user_id", "district_id", "times", "timediff_list",
          "time_type", "time_type_list"]
VOCAB_TABLES = {"time_type", "time_type_list"}

# The 24 features: (name, column index, CSV default, table, is list, in train.py's wide input).
# train.py puts an indicator column in the wide input for every hashed member except the 7
# history lists of the shared pairs, and for both vocabulary columns (its `if col not in
# HISTORY_COLUMN` tests a stale loop variable, 'city_id'): 17 of the 24.
FEATURES = [
    ("shop_id", 9, "", "shop_id", False, True),
    ("shop_id_list", 22, "", "shop_id", True, False),
    ("item_id", 10, "", "item_id", False, True),
    ("item_id_list", 23, "", "item_id", True, False),
    ("category_1_id", 17, "0", "category_1_id", False, True),
    ("category_1_id_list", 24, "", "category_1_id", True, False),
    ("merge_standard_food_id", 18, "0", "merge_standard_food_id", False, True),
    ("merge_standard_food_id_list", 25, "", "merge_standard_food_id", True, False),
    ("brand_id", 16, "0", "brand_id", False, True),
    ("brand_id_list", 26, "", "brand_id", True, False),
    ("shop_aoi_id", 13, "", "shop_aoi_id", False, True),
    ("shop_aoi_id_list", 28, "", "shop_aoi_id", True, False),
    ("shop_geohash_12", 15, "", "shop_geohash_12", False, True),
    ("geohash12", 38, "", "shop_geohash_12", False, True),
    ("shop_geohash_6", 14, "", "shop_geohash_6", False, True),
    ("shop_geohash6_list", 29, "", "shop_geohash_6", True, False),
    ("visit_city", 3, "0", "city", False, True),
    ("city_id", 11, "0", "city", False, True),
    ("user_id", 1, "", "user_id", False, True),
    ("district_id", 12, "0", "district_id", False, True),
    ("times", 34, "0", "times", False, True),
    ("timediff_list", 30, "0", "timediff_list", True, True),
    ("time_type", 36, "", "time_type", False, True),
    ("time_type_list", 32, "", "time_type_list", True, True),
]
NUM_FEATURES = len(FEATURES)
WIDE_FEATURES = [i for i, f in enumerate(FEATURES) if f[5]]


def table_bases(buckets):
    """First row of each table in the one concatenated embedding matrix, and its total size."""
    bases, total = {}, 0
    for t in TABLES:
        bases[t] = total
        total += len(VOCAB) if t in VOCAB_TABLES else buckets
    return bases, total


class HashCache(dict):
    """token -> bucket, with the hash computed once per distinct token."""

    def __init__(self, buckets):
        super().__init__()
        self.buckets = buckets

    def __missing__(self, tok):
        v = zlib.crc32(tok.encode()) % self.buckets
        self[tok] = v
        return v


def _floats(tokens):
    try:
        return np.array(tokens, dtype=np.float64)
    except ValueError:  # an empty or malformed token inside a list: 0 (TF would fail)
        out = []
        for t in tokens:
            try:
                out.append(float(t))
            except ValueError:
                out.append(0.0)
        return np.array(out, dtype=np.float64)


def parse_chunk(rows, cache, bases):
    """Rows (lists of 39 strings) -> labels, raw numerics, token ids in bag order, bag sizes.

    Bags are ordered (row, feature): bag r*24+f holds row r's tokens of feature f.
    """
    n = len(rows)
    cols = list(zip(*rows))
    labels = np.array([float(v) if v else 0.0 for v in cols[0]], np.float32)
    num = np.empty((n, NUM_NUMERIC), np.float64)
    for j, (ci, d) in enumerate(NUMERIC):
        num[:, j] = [float(v) if v else d for v in cols[ci]]
    for j, (ci, d) in enumerate(NUMERIC_LIST_MEAN):
        cells = [v if v else d for v in cols[ci]]
        cnt = np.array([c.count(";") + 1 for c in cells], np.int64)
        vals = _floats(";".join(cells).split(";"))
        starts = np.concatenate([[0], np.cumsum(cnt)[:-1]])
        num[:, len(NUMERIC) + j] = np.add.reduceat(vals, starts) / cnt
    counts = np.zeros((n, NUM_FEATURES), np.int64)
    ids = []
    for f, (_, ci, d, table, is_list, _) in enumerate(FEATURES):
        cells = [v if v else d for v in cols[ci]]
        if is_list:
            toks = ";".join(cells).split(";")
            cnt = np.array([c.count(";") + 1 for c in cells], np.int64)
        else:
            toks = cells
            cnt = np.ones(n, np.int64)
        if table in VOCAB_TABLES:
            t_ids = np.fromiter((VOCAB.get(t, -1) for t in toks), np.int64, len(toks))
            keep = t_ids >= 0
        else:
            t_ids = np.fromiter(map(cache.__getitem__, toks), np.int64, len(toks))
            keep = np.ones(len(toks), bool) if is_list else np.array([t != "" for t in toks])
        if not keep.all():
            starts = np.concatenate([[0], np.cumsum(cnt)[:-1]])
            cnt = np.add.reduceat(keep.astype(np.int64), starts) if len(toks) else cnt
            t_ids = t_ids[keep]
        counts[:, f] = cnt
        ids.append(t_ids + bases[table])
    # Scatter each feature's tokens into (row, feature) bag order.
    bag_start = np.concatenate([[0], np.cumsum(counts.ravel())[:-1]]).reshape(n, NUM_FEATURES)
    tokens = np.empty(int(counts.sum()), np.int64)
    for f in range(NUM_FEATURES):
        c = counts[:, f]
        feat_start = np.concatenate([[0], np.cumsum(c)[:-1]])
        dest = np.arange(int(c.sum())) + np.repeat(bag_start[:, f] - feat_start, c)
        tokens[dest] = ids[f]
    return labels, num, tokens, counts


def load(path, max_rows, cache, bases, chunk=65536):
    """Parses one CSV in chunks; rows without 39 fields are skipped."""
    parts = []
    with open(path) as f:
        lines = itertools.islice(f, max_rows) if max_rows else f
        while True:
            block = [l.rstrip("\r\n").split(",") for l in itertools.islice(lines, chunk)]
            if not block:
                break
            block = [r for r in block if len(r) == NUM_COLUMNS]
            if block:
                parts.append(parse_chunk(block, cache, bases))
    labels = np.concatenate([p[0] for p in parts])
    num = np.concatenate([p[1] for p in parts])
    tokens = np.concatenate([p[2] for p in parts])
    counts = np.concatenate([p[3] for p in parts])
    return labels, num, tokens, counts


class Data:
    """Pre-parsed tensors of one file, after the numeric transform, ready to slice by rows."""

    def __init__(self, parsed, numeric, linear):
        labels, num, tokens, counts = parsed
        if numeric == "log1p":
            num = np.log1p(np.maximum(num, 0.0))
        wide_feats = WIDE_FEATURES if linear == "weightless" else list(range(NUM_FEATURES))
        wide = counts[:, wide_feats].sum(1) + num.sum(1)
        self.n = len(labels)
        self.y = torch.from_numpy(labels)
        self.num = torch.from_numpy(num.astype(np.float32))
        self.wide = torch.from_numpy(wide.astype(np.float32))
        self.tokens = torch.from_numpy(tokens)
        off = np.concatenate([[0], np.cumsum(counts.ravel())])
        self.off_np = off
        self.off = torch.from_numpy(off)
        self.tokens_per_row = float(off[-1]) / max(self.n, 1)

    def batch(self, r0, r1):
        b0, b1 = r0 * NUM_FEATURES, r1 * NUM_FEATURES
        t0, t1 = int(self.off_np[b0]), int(self.off_np[b1])
        return (self.tokens[t0:t1], self.off[b0:b1] - t0, self.num[r0:r1], self.wide[r0:r1],
                self.y[r0:r1])


def glorot(lin):
    torch.nn.init.xavier_uniform_(lin.weight)
    torch.nn.init.zeros_(lin.bias)
    return lin


def mlp(width, hidden, batch_norm):
    layers = []
    for h in hidden:
        layers += [glorot(torch.nn.Linear(width, h)), torch.nn.ReLU()]
        if batch_norm:
            # TF momentum 0.99 == torch momentum 0.01; tf.layers eps 1e-3.
            layers.append(torch.nn.BatchNorm1d(h, eps=1e-3, momentum=0.01))
        width = h
    return torch.nn.Sequential(*layers), width


class ElmDeepFM(torch.nn.Module):
    def __init__(self, table_rows, dim, linear, batch_norm, sparse):
        super().__init__()
        self.dim = dim
        self.learned = linear == "learned"
        width = dim + (1 if self.learned else 0)  # column 0: the first-order weight
        self.emb = torch.nn.EmbeddingBag(table_rows, width, mode="mean", sparse=sparse)
        std = 1.0 / dim ** 0.5
        with torch.no_grad():
            torch.nn.init.trunc_normal_(self.emb.weight, std=std, a=-2 * std, b=2 * std)
            if self.learned:
                self.emb.weight[:, 0] = 0.0
        if self.learned:
            self.w_dense = torch.nn.Parameter(torch.zeros(NUM_NUMERIC))
            self.bias = torch.nn.Parameter(torch.zeros(1))
        self.dnn, out = mlp(NUM_FEATURES * dim + NUM_NUMERIC, [512, 128, 32], batch_norm)
        final, fout = mlp(out + 1 + dim, [128, 64], batch_norm)
        self.final = torch.nn.Sequential(final, glorot(torch.nn.Linear(fout, 1)))

    def forward(self, tokens, offsets, num, wide):
        b = num.shape[0]
        pooled = self.emb(tokens, offsets).view(b, NUM_FEATURES, -1)
        if self.learned:
            e = pooled[..., 1:]
            linear = self.bias + pooled[..., 0].sum(1) + num @ self.w_dense
        else:
            e = pooled
            linear = wide
        s = e.sum(1)
        fm = 0.5 * (s * s - (e * e).sum(1))
        dnn = self.dnn(torch.cat([e.reshape(b, -1), num], 1))
        return self.final(torch.cat([dnn, linear.unsqueeze(1), fm], 1)).squeeze(1)


def auc(scores, labels):
    """Exact ROC AUC: Mann-Whitney with tied scores given their average rank."""
    order = np.argsort(scores, kind="mergesort")
    s, y = scores[order], labels[order]
    first = np.concatenate([[True], s[1:] != s[:-1]])
    starts = np.flatnonzero(first)
    ends = np.concatenate([starts[1:], [len(s)]])
    ranks = ((starts + ends - 1) / 2.0 + 1)[np.cumsum(first) - 1]
    pos = y.sum()
    neg = len(y) - pos
    if pos == 0 or neg == 0:
        return float("nan")
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def auc_tf(scores, labels, num_thresholds=1000):
    """tf.metrics.auc (TF 1.15, ROC, trapezoidal) with num_thresholds buckets."""
    eps = 1e-7
    thr = np.array([-eps] + [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
                   + [1 + eps])
    pos_s, neg_s = np.sort(scores[labels == 1]), np.sort(scores[labels != 1])
    tp = len(pos_s) - np.searchsorted(pos_s, thr, side="right")
    fp = len(neg_s) - np.searchsorted(neg_s, thr, side="right")
    tpr = tp / (len(pos_s) + eps)
    fpr = fp / (len(neg_s) + eps)
    return float(np.sum((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data_location", default="./data")
    ap.add_argument("--batch_size", type=int, default=512)
    ap.add_argument("--learning_rate", type=float, default=0.001)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=2021)
    ap.add_argument("--buckets", type=int, default=10000)
    ap.add_argument("--embedding_dim", type=int, default=DIM_DEFAULT)
    ap.add_argument("--max_rows", type=int, default=0, help="rows read from each file (0: all)")
    ap.add_argument("--loss", choices=["mse", "logloss"], default="mse")
    ap.add_argument("--numeric", choices=["raw", "log1p"], default="raw")
    ap.add_argument("--linear", choices=["weightless", "weightless_all", "learned"],
                    default="weightless",
                    help="weightless: train.py's wide-input sum (17 indicator columns + "
                         "numerics); weightless_all: the same counting all 24 features; "
                         "learned: bias + first-order weights + w_dense . numerics")
    ap.add_argument("--batch_norm", choices=["true", "false"], default="true")
    ap.add_argument("--log_every", type=int, default=100)
    ap.add_argument("--sparse", choices=["true", "false"], default="true",
                    help="sparse embedding gradients with SparseAdam (lazy on rows, PyTorch's "
                         "fast path); false: dense gradients and Adam over every bucket row")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    bases, table_rows = table_bases(args.buckets)
    cache = HashCache(args.buckets)
    t0 = time.time()
    tr = Data(load(os.path.join(args.data_location, "train.csv"), args.max_rows, cache, bases),
              args.numeric, args.linear)
    ev = Data(load(os.path.join(args.data_location, "eval.csv"), args.max_rows, cache, bases),
              args.numeric, args.linear)
    parse_s = time.time() - t0
    print("parsed %d train / %d eval rows in %.1fs, %.1f tokens per row, %d distinct tokens"
          % (tr.n, ev.n, parse_s, tr.tokens_per_row, len(cache)), file=sys.stderr)

    sparse = args.sparse == "true"
    model = ElmDeepFM(table_rows, args.embedding_dim, args.linear, args.batch_norm == "true", sparse)
    emb = [model.emb.weight]
    rest = [p for p in model.parameters() if p is not model.emb.weight]
    opts = [torch.optim.Adam(rest, lr=args.learning_rate, betas=(0.9, 0.999), eps=1e-8)]
    if sparse:
        # Lazy on rows, as DeepRec's optimizers are: only the rows a batch
        # touched move (and PyTorch's fast path for embedding bags).
        opts.append(torch.optim.SparseAdam(emb, lr=args.learning_rate, betas=(0.9, 0.999), eps=1e-8))
    else:
        opts.append(torch.optim.Adam(emb, lr=args.learning_rate, betas=(0.9, 0.999), eps=1e-8))
    bce = torch.nn.BCEWithLogitsLoss()

    def loss_of(logit, y):
        if args.loss == "mse":
            return torch.mean((torch.sigmoid(logit) - y) ** 2)
        return bce(logit, y)

    model.train()
    n, B = tr.n, args.batch_size
    window, first_window, last_window, step = [], None, None, 0
    t0 = time.time()
    for start in range(0, n, B):
        tok, off, num, wide, y = tr.batch(start, min(start + B, n))
        loss = loss_of(model(tok, off, num, wide), y)
        for o in opts:
            o.zero_grad()
        loss.backward()
        for o in opts:
            o.step()
        step += 1
        window.append(loss.item())
        if len(window) == args.log_every:
            m = sum(window) / len(window)
            first_window = m if first_window is None else first_window
            last_window = m
            print("step %d rows %d %s %.6f (%.0f samples/s)"
                  % (step, min(start + B, n), args.loss, m,
                     min(start + B, n) / (time.time() - t0)), file=sys.stderr)
            window = []
    train_s = time.time() - t0
    if window:  # a final, partial window
        last_window = sum(window) / len(window)
        first_window = last_window if first_window is None else first_window

    model.eval()
    with torch.no_grad():
        probs = torch.cat([torch.sigmoid(model(*ev.batch(i, min(i + 4096, ev.n))[:4]))
                           for i in range(0, ev.n, 4096)]).numpy().astype(np.float64)
    yev = ev.y.numpy().astype(np.float64)
    p = np.clip(probs, 1e-7, 1 - 1e-7)
    result = {
        "model": "elm_exact-port",
        "framework": "pytorch " + torch.__version__,
        "blas": os.path.realpath("/etc/alternatives/libblas.so.3-x86_64-linux-gnu"),
        "threads": args.threads,
        "rows": int(n),
        "eval_rows": int(ev.n),
        "steps": step,
        "samples_per_s": n / train_s,
        "train_seconds": train_s,
        "parse_seconds": parse_s,
        "tokens_per_row": tr.tokens_per_row,
        "train_loss_first_window": first_window,
        "train_loss_last_window": last_window,
        "auc": auc(probs, yev),
        "auc_tf1000": auc_tf(probs, yev),
        "logloss": float(-np.mean(yev * np.log(p) + (1 - yev) * np.log(1 - p))),
        "accuracy": float(np.mean((probs > 0.5) == (yev > 0.5))),
        "config": {"loss": args.loss, "numeric": args.numeric, "linear": args.linear,
                   "batch_norm": args.batch_norm == "true",
                   "learning_rate": args.learning_rate, "buckets": args.buckets,
                   "batch_size": B, "seed": args.seed, "sparse": sparse},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
