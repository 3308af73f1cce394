#!/usr/bin/env python3
"""Runs scripts/triton/perf (Triton's perf_analyzer over HTTP and gRPC) against a walkout
server and checks each run against walkout's own Prometheus metrics:
- every measurement shows perf_analyzer's server-side section (read from walkout's
  statistics extension), with inference count = successful request count > 0;
- the server-side request latency is below the client's;
- the inferences perf_analyzer saw on the server are within what walkout_inferences_total
  counted during the run, and its compute-infer time agrees with walkout_compute_latency_seconds.

usage: perf_check.py HOST:HTTP_PORT HOST:GRPC_PORT
"""
import os
import re
import subprocess
import sys
import urllib.request

MODEL = "movenet-multipose"
http, grpc = sys.argv[1], sys.argv[2]
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def metrics():
    text = urllib.request.urlopen(f"http://{http}/metrics", timeout=10).read().decode()
    def total(name):
        return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
                   if l.startswith(name) and f'model="{MODEL}"' in l)
    return total("walkout_inferences_total"), total("walkout_compute_latency_seconds_sum"), total("walkout_compute_latency_seconds_count")


# one protocol at a time, between metric scrapes
for proto in ("http", "grpc"):
    before = metrics()
    env = dict(os.environ, WALKOUT_PERF_ONLY=proto)
    run = subprocess.run([os.path.join(root, "scripts/triton/perf"), http, grpc], capture_output=True, text=True, timeout=600, env=env)
    after = metrics()
    assert run.returncode == 0, run.stdout + run.stderr
    report = run.stdout
    print(report)
    servers = re.findall(r"Server: \n\s+Inference count: (\d+)\n\s+Execution count: (\d+)\n\s+Successful request count: (\d+)\n"
                         r"\s+Avg request latency: (\d+) usec \(overhead (\d+) usec \+ queue (\d+) usec \+ compute input (\d+) usec"
                         r" \+ compute infer (\d+) usec \+ compute output (\d+) usec\)", report)
    clients = [int(x) for x in re.findall(r"Client: \n\s+Request count: \d+\n\s+Throughput: [\d.]+ infer/sec\n\s+Avg latency: (\d+) usec", report)]
    assert len(servers) == 2 and len(clients) == 2, f"{proto}: no server-side section per concurrency:\n{report}"
    seen = 0
    for (inf, exe, ok, lat, _ovh, _q, _ci, infer_us, _co), client_us in zip(servers, clients):
        inf, ok, lat, infer_us = int(inf), int(ok), int(lat), int(infer_us)
        assert inf == ok and inf > 0, f"{proto}: inference count {inf}, successful {ok}"
        assert lat <= client_us, f"{proto}: server latency {lat} us over the client's {client_us} us"
        seen += inf
    counted = after[0] - before[0]
    assert 0 < seen <= counted, f"{proto}: perf_analyzer saw {seen} inferences, walkout counted {counted}"
    compute_s = (after[1] - before[1]) / max(after[2] - before[2], 1)
    infer_s = sum(int(s[7]) * int(s[0]) for s in servers) / seen / 1e6
    assert 0.5 <= infer_s / compute_s <= 2.0, f"{proto}: compute infer {infer_s:.4f} s against walkout_compute_latency_seconds {compute_s:.4f} s"
    print(f"{proto}: perf_analyzer server-side {seen} inferences (walkout_inferences_total +{counted:.0f}); "
          f"compute infer {infer_s * 1e3:.2f} ms, walkout_compute_latency_seconds mean {compute_s * 1e3:.2f} ms")
print("perf_analyzer: both protocols report the server side, matching walkout's metrics")
