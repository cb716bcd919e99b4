#!/usr/bin/env python3
"""Soak test: one cmdb server under mixed load for a long time; its memory must level off.

Starts `cmdb serve --demo` on a fresh data folder (the release build unless --binary), then
runs worker threads for --minutes: reads (CI lists, single CIs, impact, history, drift), writes
(CI patches, CIs and relations created and deleted again, so the estate stays the same size),
synchronous and background imports of the same documents, and discovery runs pushed by an
agent. The server's resident memory (VmRSS of the cmdb process; PostgreSQL's is its own) is
sampled every 10 s. After the warm-up (the first sixth of the run), the median of the last
minute may exceed the median of the first minute after warm-up by at most --max-growth
percent. Any 5xx answer fails the run too. Prints a summary (the figures in
docs/reliability.md) and exits non-zero on failure.

  scripts/soak.py --minutes 30          # the recorded run
  scripts/soak.py --minutes 2           # a quick look
"""
import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Client:
    def __init__(self, base, token):
        self.base = base
        self.token = token
        self.lock = threading.Lock()
        self.counts = {}
        self.errors = []
        self.refusals = {}  # (method, status) -> the first 4xx seen, to tell expected from not

    def call(self, method, path, body=None, headers=None, expect=(200, 201, 202, 204)):
        data = None
        h = {"Authorization": "Bearer " + self.token}
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                status, text = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read()
        except Exception as e:  # connection trouble is a failure of the soak
            status, text = 0, str(e).encode()
        with self.lock:
            key = f"{method} {status}"
            self.counts[key] = self.counts.get(key, 0) + 1
            if status >= 500 or status == 0:
                self.errors.append(f"{method} {path} -> {status} {text[:200]!r}")
            elif status >= 400:
                self.refusals.setdefault((method, status), f"{path} {text[:160]!r}")
        if status in expect and text:
            try:
                return json.loads(text)
            except ValueError:
                return None
        return None


def worker(client, kind, stop, ids, seed):
    rnd = random.Random(seed)
    n = 0
    while not stop.is_set():
        n += 1
        ci = rnd.choice(ids)
        if kind == "read":
            choice = rnd.random()
            if choice < 0.3:
                client.call("GET", f"/api/v1/cis/{ci}")
            elif choice < 0.5:
                client.call("GET", "/api/v1/cis?limit=50&type=" + rnd.choice(["vm", "server", "application"]))
            elif choice < 0.7:
                client.call("GET", f"/api/v1/cis/{ci}/impact")
            elif choice < 0.8:
                client.call("GET", f"/api/v1/cis/{ci}/history")
            elif choice < 0.9:
                client.call("GET", "/api/v1/drift?limit=50")
            else:
                client.call("GET", f"/api/v1/cis/{ci}/impact/graph?format=svg")
        elif kind == "write":
            choice = rnd.random()
            if choice < 0.4:
                client.call("PATCH", f"/api/v1/cis/{ci}", {"owner": f"team-{n % 7}"},
                            headers={"Content-Type": "application/merge-patch+json"})
            elif choice < 0.7:
                made = client.call("POST", "/api/v1/cis", {"type": "vm", "name": f"soak-{seed}-{n}"})
                if made:
                    client.call("DELETE", f"/api/v1/cis/{made['id']}")
            else:
                other = rnd.choice(ids)
                rel = client.call("POST", "/api/v1/relations",
                                  {"type": "depends_on", "from": ci, "to": other},
                                  expect=(201,))
                if rel:
                    client.call("DELETE", f"/api/v1/relations/{rel['id']}")
        elif kind == "import":
            doc = {"cis": [{"type": "vm", "name": f"soak-import-{i}", "owner": f"team-{n % 3}"}
                           for i in range(200)]}
            if n % 2:
                client.call("POST", "/api/v1/import", doc)
            else:
                client.call("POST", "/api/v1/import", doc, headers={"Prefer": "respond-async"})
            time.sleep(1)
        elif kind == "discovery":
            items = [{"identity": {"serial": f"SOAK-{i}"}, "attributes": {"hostname": f"soak-{i}",
                                                                           "memory_mb": 1024 * (1 + n % 2)}}
                     for i in range(50)]
            client.call("POST", f"/api/v1/discovery/runs?source={ids_source[0]}", {"items": items})
            time.sleep(2)


ids_source = [0]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--binary", default=os.path.join(ROOT, "build/release/server/cmdb"))
    parser.add_argument("--max-growth", type=float, default=5.0)
    parser.add_argument("--port", type=int, default=18095)
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="cmdbsoak-", dir="/tmp")
    os.chmod(work, 0o755)
    data = os.path.join(work, "data")
    server = subprocess.Popen([args.binary, "serve", "--data-dir", data, "--demo", "--no-request-log",
                               "--listen", f"127.0.0.1:{args.port}"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        for line in server.stdout:
            if b"serving on" in line:
                break
        threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()
        token = json.load(open(os.path.join(data, "demo-tokens.json")))["admin"]
        client = Client(f"http://127.0.0.1:{args.port}", token)
        ids = [c["id"] for c in client.call("GET", "/api/v1/cis?limit=1000")["items"]]
        source = client.call("POST", "/api/v1/discovery/sources", {"name": "soak agents", "kind": "agent",
                                                                    "config": {"on_unmatched": "create"}})
        ids_source[0] = source["id"]
        stop = threading.Event()
        threads = []
        for i, kind in enumerate(["read"] * 3 + ["write"] * 2 + ["import", "discovery"]):
            t = threading.Thread(target=worker, args=(client, kind, stop, ids, i), daemon=True)
            t.start()
            threads.append(t)
        duration = args.minutes * 60
        samples = []
        started = time.time()
        while time.time() - started < duration:
            time.sleep(10)
            samples.append((time.time() - started, rss_kib(server.pid)))
            print(f"  {samples[-1][0]:7.0f} s  rss {samples[-1][1] / 1024:7.1f} MiB", flush=True)
        stop.set()
        for t in threads:
            t.join(timeout=90)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)

    warm = duration / 6
    after_warm = [r for t, r in samples if warm <= t < warm + 60]
    last = [r for t, r in samples if t >= duration - 60]
    base = statistics.median(after_warm)
    final = statistics.median(last)
    growth = (final / base - 1) * 100
    requests = sum(client.counts.values())
    print(f"duration {args.minutes:g} min, {requests} requests "
          f"({requests / duration:.0f}/s): " + ", ".join(f"{k} x{v}" for k, v in sorted(client.counts.items())))
    print(f"rss after warm-up ({warm / 60:.0f} min) {base / 1024:.1f} MiB, at the end {final / 1024:.1f} MiB, "
          f"peak {max(r for _, r in samples) / 1024:.1f} MiB: growth {growth:+.1f}% (limit {args.max_growth}%)")
    for (method, status), example in sorted(client.refusals.items()):
        print(f"  e.g. {method} {status}: {example}")
    failed = False
    if client.errors:
        print(f"{len(client.errors)} failed requests, e.g. {client.errors[:3]}")
        failed = True
    if growth > args.max_growth:
        print("resident memory grew past the limit")
        failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
