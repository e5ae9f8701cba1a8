#!/usr/bin/env bash
# Mutation check: applies each one-line mutation of tests/mutation/mutations.txt
# to a scratch copy of the tree, rebuilds incrementally, runs the tests the
# entry names, and prints whether they caught it. Not part of CI (it takes
# tens of minutes on two cores): run it after changing tests or the code they
# guard. Exits non-zero when a mutation survives or an entry no longer applies.
#
#   tests/mutation/run.sh                 # every mutation
#   tests/mutation/run.sh bf16/ routing/  # only ids starting with these
#
# MUTATION_DIR (default /tmp/deepfm-mutation) keeps the scratch copy and its
# build between runs, so a second run only rebuilds what changed.
set -euo pipefail
src="$(cd "$(dirname "$0")/../.." && pwd)"
scratch="${MUTATION_DIR:-/tmp/deepfm-mutation}"
jobs=$(nproc 2>/dev/null || echo 2)

mkdir -p "$scratch"
echo "mutation: copying the tree to $scratch"
# -p keeps modification times, so the scratch build stays incremental.
(cd "$src" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -p -t "$scratch")
# The manifest checks' node modules are ignored by git; share the source's.
if [ -d "$src/tests/deploy/k8s/node_modules" ]; then
  ln -sfn "$src/tests/deploy/k8s/node_modules" "$scratch/tests/deploy/k8s/node_modules"
fi
cmake -S "$scratch" -B "$scratch/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
echo "mutation: building the unmutated copy"
cmake --build "$scratch/build" -j"$jobs" >/dev/null

exec python3 - "$scratch" "$src/tests/mutation/mutations.txt" "$jobs" "$@" <<'PY'
import os, re, subprocess, sys, time

scratch, listing, jobs = sys.argv[1], sys.argv[2], sys.argv[3]
only = sys.argv[4:]

def parse(path):
    blocks, cur = [], {}
    for raw in open(path, encoding="utf-8"):
        line = raw.rstrip("\n")
        if line.startswith("#"):
            continue
        if not line.strip():
            if cur:
                blocks.append(cur)
            cur = {}
            continue
        key, _, value = line.partition(":")
        cur[key.strip()] = value[1:] if value.startswith(" ") else value
    if cur:
        blocks.append(cur)
    for b in blocks:
        for k in ("id", "file", "from", "to", "tests"):
            if k not in b:
                sys.exit(f"mutations.txt: entry {b.get('id', '?')} lacks '{k}'")
    return blocks

def apply(text, m):
    count = text.count(m["from"])
    at = int(m.get("at", "0"))
    if at == 0 and count != 1:
        return None, f"'from' occurs {count} times (give 'at' or a longer 'from')"
    if at > count:
        return None, f"'from' occurs {count} times, fewer than at={at}"
    pos = -1
    for _ in range(max(at, 1)):
        pos = text.find(m["from"], pos + 1)
    return text[:pos] + m["to"] + text[pos + len(m["from"]):], None

def run(cmd, timeout):
    try:
        p = subprocess.run(cmd, cwd=scratch, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, text=True)
        return p.returncode, p.stdout
    except subprocess.TimeoutExpired as e:
        return 124, (e.stdout or "") if isinstance(e.stdout, str) else ""

mutations = [m for m in parse(listing) if not only or any(m["id"].startswith(o) for o in only)]
ids = [m["id"] for m in mutations]
if len(set(ids)) != len(ids):
    sys.exit("mutations.txt: duplicate ids")

# The named tests must pass before any mutation, or a failure proves nothing.
union = "|".join(f"({m['tests']})" for m in mutations)
rc, out = run(["ctest", "--test-dir", "build", "-j", jobs, "-R", union, "--timeout", "300"], 3600)
if rc != 0:
    print(out[-4000:])
    sys.exit("mutation: the unmutated tree fails the named tests; fix that first")

rows, bad = [], 0
for m in mutations:
    path = os.path.join(scratch, m["file"])
    original = open(path, encoding="utf-8").read()
    mutated, why = apply(original, m)
    start = time.time()
    if mutated is None:
        rows.append((m["id"], "STALE", 0.0, why))
        bad += 1
        continue
    try:
        open(path, "w", encoding="utf-8").write(mutated)
        rc, out = run(["cmake", "--build", "build", "-j", jobs], 1800)
        if rc != 0:
            result, note = "BUILD-ERROR", "the mutated code does not compile; fix the entry"
            bad += 1
        else:
            rc, out = run(["ctest", "--test-dir", "build", "-j", jobs, "-R", m["tests"],
                           "--timeout", "300"], 1800)
            found = re.search(r"(\d+) tests failed out of (\d+)", out)
            ran = re.search(r"out of (\d+)", out)
            if rc != 0 and found:
                result, note = "caught", f"{found.group(1)} of {found.group(2)} tests failed"
            elif rc != 0:
                result, note = "caught", "ctest failed (" + out.strip().splitlines()[-1][:60] + ")"
            else:
                result, note = "SURVIVED", f"all {ran.group(1) if ran else '?'} named tests passed"
                bad += 1
    finally:
        open(path, "w", encoding="utf-8").write(original)
    rows.append((m["id"], result, time.time() - start, note))
    print(f"{m['id']:<62} {result:<12} {rows[-1][2]:6.1f} s  {note}", flush=True)

# Leave the scratch build matching the tree.
run(["cmake", "--build", "build", "-j", jobs], 1800)
caught = sum(1 for r in rows if r[1] == "caught")
print(f"\n| mutation | result | seconds | detail |\n|---|---|---|---|")
for r in rows:
    print(f"| {r[0]} | {r[1]} | {r[2]:.0f} | {r[3]} |")
print(f"\nmutation: {caught} of {len(rows)} caught")
sys.exit(1 if bad else 0)
PY
