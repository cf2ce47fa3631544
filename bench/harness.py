#!/usr/bin/env python3
"""Sluice against webdis and raw Redis, side by side, on this machine.

`make bench` runs this after building the gateway in release. It starts its own
redis-server, webdis, gateway and a bare hyper server (the ceiling) on loopback
ports, drives each equivalent operation with wrk at 50 connections for a fixed
duration, reads each server's CPU time from /proc and Redis's command counts
from INFO commandstats around every run, adds redis-benchmark's GET/SET as the
floor, and writes docs/benchmarks.md and docs/benchmarks.svg from what it
measured.

`make bench-check` (`harness.py --check`) runs a short form and fails when a
row's gateway/webdis ratio is more than 25% below the committed
docs/benchmarks.md figure; it writes nothing.
"""

import json
import http.server
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "bench" / "wrk"
REDIS_PORT, WEBDIS_PORT, GATEWAY_PORT, CEILING_PORT = 16379, 17379, 18080, 18081
# The door: the same gateway and ceiling over HTTPS (one certificate, made by the ceiling).
GATEWAY_TLS_PORT, CEILING_TLS_PORT = 18082, 18083
TRACED_PORT, TRACE_SINK_PORT = 18084, 18085
# The fixed-rate rows: h2load --h1, this many connections at this rate each (20k req/s).
RATE_CONNECTIONS, RATE_PER_CONNECTION = 50, 400
# The cluster row: 3 primaries and 3 replicas, and a gateway of its own on them.
CLUSTER_PORTS, CLUSTER_GATEWAY_PORT = list(range(16401, 16407)), 18090
CHECK = "--check" in sys.argv
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "50"))
DURATION = os.environ.get("BENCH_DURATION", "2s" if CHECK else "5s")
# Each row alternates gateway and webdis runs this many times and keeps the
# median run of each: on a shared 2-core machine single runs vary by ±15%.
REPEATS = int(os.environ.get("BENCH_REPEATS", "1" if CHECK else "3"))
# bench-check: a ratio this far below the committed one fails.
TOLERANCE = 0.75
KEYS = 1000  # miss-path key space: far more than the hot set, no near cache
ROTATE = 100_000  # the rotating mget's key space


def sh(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout


def wait_http(url, within=30):
    deadline = time.time() + within
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except Exception:
            time.sleep(0.05)
    sys.exit(f"{url} did not answer within {within}s")


def redis_cli(*args):
    return sh("redis-cli", "-p", str(REDIS_PORT), *args).strip()


def cpu_seconds(pid):
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_commands():
    """Commands Redis has run so far (INFO commandstats, scripts' commands included)."""
    stats = sh("redis-cli", "-p", str(REDIS_PORT), "INFO", "commandstats")
    # Not INFO itself: the harness's own reads would count.
    return sum(int(n) for cmd, n in re.findall(r"^cmdstat_([^:]+):calls=(\d+)", stats, re.M) if cmd != "info")


# The single redis-server's pid, once started: its CPU per request is a column.
REDIS_PID = None


def wrk(url, script=None, pid=None, misses_ok=False):
    """One wrk run: req/s, p50 ms, p99 ms, the server's CPU µs per request,
    Redis commands per request and Redis's CPU µs per request."""
    cmd = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{DURATION}", "--latency"]
    if script:
        cmd += ["-s", str(SCRIPTS / script)]
    rcpu = cpu_seconds(REDIS_PID) if REDIS_PID else 0.0
    cpu, cmds = cpu_seconds(pid), redis_commands()
    out = sh(*cmd, url)
    cpu, cmds = cpu_seconds(pid) - cpu, redis_commands() - cmds
    rcpu = (cpu_seconds(REDIS_PID) - rcpu) if REDIS_PID else 0.0
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx and not misses_ok:
        sys.exit(f"{url}: {non2xx.group(1)} failed responses\n{out}")

    def pct(p):
        v, unit = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)", out, re.M).groups()
        return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return (rps, pct(50), pct(99), cpu * 1e6 / max(total, 1), max(cmds, 0) / max(total, 1),
            rcpu * 1e6 / max(total, 1))


def h2load(urls, pid, *extra, duration=None):
    """One h2load run over `urls` (cycled by each client), every request's
    time read from its --log-file: req/s, p50, p99 and p99.9 ms, the
    server's CPU µs per request. Fails on any non-2xx answer."""
    with tempfile.NamedTemporaryFile(prefix="h2load-", suffix=".log") as log:
        cpu = cpu_seconds(pid)
        out = sh("h2load", "-t2", "-D", (duration or DURATION).removesuffix("s"),
                 f"--log-file={log.name}", *extra, *urls)
        cpu = cpu_seconds(pid) - cpu
        times = sorted(int(line.split("\t")[2]) for line in Path(log.name).read_text().splitlines() if line)
        statuses = [line.split("\t")[1] for line in Path(log.name).read_text().splitlines() if line]
    bad = [st for st in statuses if not st.startswith("2")]
    if bad or not times:
        sys.exit(f"{urls[0]}: {len(bad)} failed of {len(statuses)}\n{out}")
    rps = float(re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out).group(1))

    def pct(p):
        return times[min(len(times) - 1, int(len(times) * p / 100))] / 1000

    return (rps, pct(50), pct(99), pct(99.9), cpu * 1e6 / len(times))


def fixed_rate(urls, pid, *extra):
    """h2load --h1 at RATE_CONNECTIONS × RATE_PER_CONNECTION req/s: below
    saturation, where what counts is the tail."""
    return h2load(urls, pid, "--h1", f"-c{RATE_CONNECTIONS}", f"--rps={RATE_PER_CONNECTION}", *extra)


def cargo_bench(name, env):
    """The stdout of one of the host's benches (release), run against this harness's Redis."""
    return sh("cargo", "bench", "-q", "-p", "sluice", "--bench", name, cwd=ROOT, env={**os.environ, **env})


def language_reloads():
    """The end-to-end test that replaces a Python, then a TypeScript policy
    under load, run with no compiled plugin kept (each compile under load) and
    again with them kept: its `write-to-live` line each time."""
    lines = []
    for kept in ("compiled on the reload", "loaded from plugins.cache_dir"):
        if kept.startswith("compiled"):
            shutil.rmtree(ROOT / "build" / "plugin-cache", ignore_errors=True)
        out = sh("cargo", "test", "-q", "-p", "sluice", "--test", "reload",
                 "python_and_typescript", "--", "--nocapture", cwd=ROOT)
        line = next((l for l in out.splitlines() if l.startswith("write-to-live:")), "no figure")
        lines.append(f"{kept}: {line.removeprefix('write-to-live: ')}")
    return "\n".join(lines)


def trace_rows(work, procs, gateway, gw):
    """The hot GET and the miss-path GET on the bench gateway (traces off)
    and on a second one exporting every request's spans (sample_ratio 1.0)
    to an OTLP sink that answers 200 to everything, alternating runs."""
    class Sink(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    sink = http.server.ThreadingHTTPServer(("127.0.0.1", TRACE_SINK_PORT), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    extra = f'\n[tracing]\notlp_endpoint = "http://127.0.0.1:{TRACE_SINK_PORT}"\nsample_ratio = 1.0\n'
    traced = start_gateway(work, "sluice-traced.toml", REDIS_PORT, TRACED_PORT, extra=extra)
    procs.append(traced)
    tgw = f"http://127.0.0.1:{TRACED_PORT}"
    wait_http(tgw + "/healthz")
    rows = []
    try:
        for name, path, script in [("hot GET (near cache)", "/v1/cache/hot/k", "get10.lua"),
                                   ("miss-path GET (Redis)", "/v1/cache/cache/k", "get1000.lua")]:
            off, on = [], []
            for _ in range(REPEATS):
                off.append(wrk(gw + path, script, gateway.pid))
                on.append(wrk(tgw + path, script, traced.pid))
            rows.append((name, sorted(off)[len(off) // 2], sorted(on)[len(on) // 2]))
            print(f"traces {name:<24} off {rows[-1][1][0]:>9.0f}/s on {rows[-1][2][0]:>9.0f}/s", flush=True)
    finally:
        sink.shutdown()
    return rows


def start_cluster(work, procs):
    """A local Redis Cluster (3 primaries, 3 replicas) and a gateway on it;
    returns the gateway's process once every node is ok and it answers."""
    for port in CLUSTER_PORTS:
        d = work / f"c{port}"
        d.mkdir()
        procs.append(subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(d), "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
             "--cluster-node-timeout", "1000", "--cluster-require-full-coverage", "no"],
            stdout=subprocess.DEVNULL))
    for port in CLUSTER_PORTS:
        for _ in range(100):
            if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() == b"PONG":
                break
            time.sleep(0.05)
    sh("redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in CLUSTER_PORTS],
       "--cluster-replicas", "1", "--cluster-yes")
    deadline = time.time() + 60
    while time.time() < deadline:
        infos = [sh("redis-cli", "-p", str(p), "cluster", "info") for p in CLUSTER_PORTS]
        slots = [sh("redis-cli", "-p", str(p), "cluster", "slots").count("127.0.0.1") for p in CLUSTER_PORTS]
        if all("cluster_state:ok" in i for i in infos) and all(n == len(CLUSTER_PORTS) for n in slots):
            break
        time.sleep(0.1)
    else:
        sys.exit("the benchmark's cluster did not become ok within 60 s")
    seeds = ", ".join(f'"redis://127.0.0.1:{p}"' for p in CLUSTER_PORTS[1:3])
    gateway = start_gateway(work, "sluice-cluster.toml", CLUSTER_PORTS[0], CLUSTER_GATEWAY_PORT,
                            f"cluster = true\nseeds = [{seeds}]\n")
    procs.append(gateway)
    wait_http(f"http://127.0.0.1:{CLUSTER_GATEWAY_PORT}/readyz")
    return gateway


def wait_port(port, within=30):
    """Until something accepts TCP connections on `port` (an HTTPS server,
    which urllib would not trust)."""
    import socket
    deadline = time.time() + within
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port} after {within}s")


def start_gateway(work, name, redis_port, port, redis_extra="", tls=None, extra=""):
    """The release gateway with bench/sluice-bench.toml on the Redis at
    `redis_port`; over HTTPS with `tls` = (cert, key)."""
    config = (ROOT / "bench" / "sluice-bench.toml").read_text()
    config = config.replace("@REDIS@", f"redis://127.0.0.1:{redis_port}").replace(
        "@PLUGINS@", str(ROOT / "build" / "plugins"))
    config = config.replace("[redis]\n", f"[redis]\n{redis_extra}", 1)
    if tls:
        config += f'\n[server.tls]\ncert_file = "{tls[0]}"\nkey_file = "{tls[1]}"\n'
    config += extra

    (work / name).write_text(config)
    return subprocess.Popen(
        [str(ROOT / "target" / "release" / "sluice"), "serve", "--config", str(work / name),
         "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "warn"})


def fill(gw, value):
    """The rows' data through a gateway: the hot keys and the miss-path keys."""
    for i in range(10):
        req = urllib.request.Request(f"{gw}/v1/cache/hot/k{i}", data=value.encode(), method="PUT",
                                     headers={"content-type": "application/json"})
        urllib.request.urlopen(req)
    names = [f"k{i}" for i in range(KEYS)] + [f"r{i}" for i in range(ROTATE)]
    for at in range(0, len(names), 1000):
        items = {k: {"asset": "BTC", "price": 64000.5} for k in names[at:at + 1000]}
        req = urllib.request.Request(f"{gw}/v1/mset/cache", data=json.dumps({"items": items}).encode(),
                                     headers={"content-type": "application/json"})
        urllib.request.urlopen(req)


def rss_mib(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    peak = re.search(r"VmHWM:\s+(\d+) kB", status).group(1)
    return int(peak) / 1024


def main():
    global REDIS_PID
    work = Path(tempfile.mkdtemp(prefix="sluice-bench-"))
    procs = []
    try:
        procs.append(subprocess.Popen(
            ["redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(work)], stdout=subprocess.DEVNULL))
        REDIS_PID = procs[0].pid
        for _ in range(100):
            if subprocess.run(["redis-cli", "-p", str(REDIS_PORT), "ping"], capture_output=True).stdout.strip() == b"PONG":
                break
            time.sleep(0.05)
        (work / "webdis.json").write_text(json.dumps({
            "redis_host": "127.0.0.1", "redis_port": REDIS_PORT, "http_host": "127.0.0.1",
            "http_port": WEBDIS_PORT, "threads": 2, "pool_size": 20, "daemonize": False,
            "database": 0, "verbosity": 0, "logfile": str(work / "webdis.log")}))
        procs.append(subprocess.Popen(["webdis", str(work / "webdis.json")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        gateway = start_gateway(work, "sluice.toml", REDIS_PORT, GATEWAY_PORT)
        procs.append(gateway)
        ceiling_bin = str(ROOT / "target" / "release" / "examples" / "ceiling")
        ceiling = subprocess.Popen([ceiling_bin, f"127.0.0.1:{CEILING_PORT}"], stdout=subprocess.DEVNULL)
        procs.append(ceiling)
        # HTTPS: the ceiling writes its certificate, the gateway serves with it.
        ceiling_tls = subprocess.Popen([ceiling_bin, f"127.0.0.1:{CEILING_TLS_PORT}", "--tls", str(work)],
                                       stdout=subprocess.DEVNULL)
        procs.append(ceiling_tls)
        gw, wd = f"http://127.0.0.1:{GATEWAY_PORT}", f"http://127.0.0.1:{WEBDIS_PORT}"
        top = f"http://127.0.0.1:{CEILING_PORT}"
        wait_http(gw + "/healthz")
        wait_http(wd + "/PING")
        wait_http(top + "/")
        webdis = procs[1]
        for _ in range(100):
            if (work / "key.pem").exists():
                break
            time.sleep(0.05)
        gateway_tls = start_gateway(work, "sluice-tls.toml", REDIS_PORT, GATEWAY_TLS_PORT,
                                    tls=(work / "cert.pem", work / "key.pem"))
        procs.append(gateway_tls)
        gateway_https = f"https://127.0.0.1:{GATEWAY_TLS_PORT}"
        ceiling_https = f"https://127.0.0.1:{CEILING_TLS_PORT}"
        wait_port(GATEWAY_TLS_PORT)
        wait_port(CEILING_TLS_PORT)

        # The same data for both: gateway values are MessagePack, webdis's plain strings.
        value = '{"asset":"BTC","price":64000.5}'
        fill(gw, value)
        pipe = "".join(f"SET w:k{i} '{value}'\nSET w:hot{i} '{value}'\n" for i in range(KEYS))
        pipe += "".join(f"SET w:r{i} '{value}'\n" for i in range(ROTATE))
        subprocess.run(["redis-cli", "-p", str(REDIS_PORT)], input=pipe, text=True, capture_output=True, check=True)
        sha = redis_cli("SCRIPT", "LOAD", (ROOT / "host" / "src" / "store" / "ratelimit.lua").read_text())
        mget = "/".join(f"w:k{i}" for i in range(100))
        (work / "mget.json").write_text(json.dumps({"keys": [f"k{i}" for i in range(100)]}))

        os.environ["SLUICE_BENCH_MGET"] = str(work / "mget.json")
        rows = [
            ("hot GET (near cache)", (gw + "/v1/cache/hot/k", "get10.lua"), (wd + "/GET/w:hot", "get10.lua")),
            ("same-key miss storm", (gw + "/v1/cache/hot/absent", None), (wd + "/GET/w:absent", None)),
            ("miss-path GET (Redis)", (gw + "/v1/cache/cache/k", "get1000.lua"), (wd + "/GET/w:k", "get1000.lua")),
            ("PUT (SET with TTL)", (gw + "/v1/cache/cache/k", "put.lua"), (wd + "/SET/w:k", "webdis_set.lua")),
            ("100-key mget", (gw + "/v1/mget/cache", "mget.lua"), (wd + f"/MGET/{mget}", None)),
            ("100-key mget, rotating", (gw + "/v1/mget/cache", "mget_rotate.lua"),
             (wd + "/", "webdis_mget_rotate.lua")),
            ("rate-limit acquire", (gw + "/v1/ratelimit/bench/s", "post_rotate.lua"),
             (wd + f"/EVALSHA/{sha}/1/rl:s", "webdis_ratelimit.lua")),
            ("event publish (XADD)", (gw + "/v1/events/arbitrage", "publish.lua"),
             (wd + "/XADD/w:events/MAXLEN/~/10000/*/type/tick/asset/btc", None)),
        ]
        results = []
        def median_run(runs):
            return sorted(runs)[len(runs) // 2]

        # The ceiling: what a bare hyper server spends on one request, in the same run.
        tops = [wrk(top + "/", None, ceiling.pid) for _ in range(REPEATS)]
        ceiling_run = median_run(tops)
        print(f"{'bare hyper ceiling':<24} {ceiling_run[0]:>9.0f}/s cpu {ceiling_run[3]:.1f} us/req", flush=True)
        for name, (gurl, gscript), (wurl, wscript) in rows:
            misses = name == "same-key miss storm"
            gs, ws = [], []
            for _ in range(REPEATS):
                gs.append(wrk(gurl, gscript, gateway.pid, misses))
                ws.append(wrk(wurl, wscript, webdis.pid, misses))
            g, w = median_run(gs), median_run(ws)
            results.append((name, g, w))
            print(f"{name:<24} gateway {g[0]:>9.0f}/s p50 {g[1]:.2f} p99 {g[2]:.2f} cpu {g[3]:.1f}us cmds {g[4]:.2f} redis {g[5]:.1f}us | "
                  f"webdis {w[0]:>9.0f}/s p50 {w[1]:.2f} p99 {w[2]:.2f} cpu {w[3]:.1f}us redis {w[5]:.1f}us | x{g[0] / w[0]:.2f}", flush=True)
        door = door_rows(gw, wd, gateway_https, ceiling_https, gateway, gateway_tls, ceiling_tls, webdis,
                         value, work)
        if CHECK:
            sys.exit(check(results))
        traces = trace_rows(work, procs, gateway, gw)
        # The same gateway build on a Redis Cluster: one gateway, 3 primaries.
        REDIS_PID = None
        cgw_proc = start_cluster(work, procs)
        cgw = f"http://127.0.0.1:{CLUSTER_GATEWAY_PORT}"
        fill(cgw, value)
        cluster = []
        for name, single_name, url, script in [
                ("hot GET (near cache)", "hot GET (near cache)", cgw + "/v1/cache/hot/k", "get10.lua"),
                ("miss-path GET (Redis)", "miss-path GET (Redis)", cgw + "/v1/cache/cache/k", "get1000.lua"),
                ("PUT (SET with TTL)", "PUT (SET with TTL)", cgw + "/v1/cache/cache/k", "put.lua")]:
            c = median_run([wrk(url, script, cgw_proc.pid) for _ in range(REPEATS)])
            single = next((g for n, g, _ in results if n == single_name), None)
            cluster.append((name, c, single))
            print(f"cluster {name:<36} {c[0]:>9.0f}/s p50 {c[1]:.2f} p99 {c[2]:.2f} cpu {c[3]:.1f}us", flush=True)
        rss = rss_mib(gateway.pid)
        floor = sh("redis-benchmark", "-p", str(REDIS_PORT), "-t", "get,set", "-c", str(CONNECTIONS),
                   "-n", "300000", "-q")
        floor = dict(re.findall(r"(GET|SET): ([\d.]+) requests per second", floor))
        versions = {
            "sluice": sh(str(ROOT / "target" / "release" / "sluice"), "--version").strip(),
            "webdis": "webdis " + sh("dpkg-query", "-W", "-f=${Version}", "webdis"),
            "redis": "redis " + sh("redis-server", "--version").split()[2].removeprefix("v="),
            "wrk": "wrk " + sh("dpkg-query", "-W", "-f=${Version}", "wrk"),
        }
        claims = cargo_bench("claims", {"SLUICE_BENCH_REDIS": f"redis://127.0.0.1:{REDIS_PORT}"})
        claims = [l.split("|")[1:] for l in claims.splitlines() if l.startswith("ROW|")]
        plugins = cargo_bench("plugin", {})
        plugins = plugins[plugins.index("policy"):] if "policy" in plugins else plugins
        plugins = (plugins.split("\n\n", 1) + [""])[:2]
        plugins.append(language_reloads())
        versions["h2load"] = sh("h2load", "--version").split()[1]
        write_report(results, ceiling_run, floor, rss, versions, claims, plugins, cluster, door, traces)
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


def door_rows(gw, wd, gws, tops, gateway, gateway_tls, ceiling_tls, webdis, value, work):
    """HTTPS and HTTP/2 against the bare ceiling in the same TLS set-up, and
    the hot GET and PUT at a fixed rate against webdis (plain HTTP/1.1)."""
    def median(runs):
        return sorted(runs)[len(runs) // 2]

    hot = [f"/v1/cache/hot/k{i}" for i in range(10)]
    tls = {"HTTPS HTTP/1.1 (wrk)": [], "HTTPS HTTP/2 (h2load -m 10)": []}
    for _ in range(REPEATS):
        g = wrk(gws + "/v1/cache/hot/k", "get10.lua", gateway_tls.pid)
        c = wrk(tops + "/", None, ceiling_tls.pid)
        tls["HTTPS HTTP/1.1 (wrk)"].append((g[0], g[1], g[2], c[0], c[1], c[2]))
        h2 = ["-c", str(CONNECTIONS), "-m", "10"]
        g = h2load([gws + p for p in hot], gateway_tls.pid, *h2)
        c = h2load([tops + "/"], ceiling_tls.pid, *h2)
        tls["HTTPS HTTP/2 (h2load -m 10)"].append((g[0], g[1], g[2], c[0], c[1], c[2]))
    door = {"tls": [(name, median(runs)) for name, runs in tls.items()], "rate": []}
    for name, run in door["tls"]:
        print(f"{name:<28} gateway {run[0]:>9.0f}/s p50 {run[1]:.2f} p99 {run[2]:.2f} | "
              f"ceiling {run[3]:>9.0f}/s | x{run[0] / run[3]:.2f}", flush=True)
    (work / "put.json").write_text(value)
    put = ["-d", str(work / "put.json"), "-H", ":method: PUT", "-H", "content-type: application/json"]
    rows = [
        ("hot GET", ([gw + p for p in hot], ()), ([f"{wd}/GET/w:hot{i}" for i in range(10)], ())),
        ("PUT (SET with TTL)", ([f"{gw}/v1/cache/cache/k{i}" for i in range(10)], put),
         ([f"{wd}/SET/w:k{i}/asset-BTC-price-64000.5/PX/3600000" for i in range(10)], ())),
    ]
    for name, (gurls, gextra), (wurls, wextra) in rows:
        gs, ws = [], []
        for _ in range(REPEATS):
            gs.append(fixed_rate(gurls, gateway.pid, *gextra))
            ws.append(fixed_rate(wurls, webdis.pid, *wextra))
        # The median run by p99.
        g, w = (sorted(r, key=lambda x: x[2])[len(r) // 2] for r in (gs, ws))
        door["rate"].append((name, g, w))
        print(f"{name + ' at ' + str(RATE_CONNECTIONS * RATE_PER_CONNECTION) + '/s':<28} gateway p50 {g[1]:.2f} "
              f"p99 {g[2]:.2f} p99.9 {g[3]:.2f} | webdis p50 {w[1]:.2f} p99 {w[2]:.2f} p99.9 {w[3]:.2f} | "
              f"p99 x{g[2] / w[2]:.2f}", flush=True)
    return door


def committed_ratios():
    """Row name → gateway/webdis ratio in the committed docs/benchmarks.md:
    the first table's (the cluster section reuses the row names for its
    ratios to a single Redis, which must not stand in for them)."""
    text = (ROOT / "docs" / "benchmarks.md").read_text()
    ratios = {}
    for m in re.finditer(r"^\| ([^|]+?) \|.*\| ([\d.]+)× \|$", text, re.M):
        ratios.setdefault(m.group(1), float(m.group(2)))
    return ratios


def check(results):
    """bench-check: 0 when every row is within TOLERANCE of its committed ratio."""
    committed, failed = committed_ratios(), []
    for name, g, w in results:
        ratio, was = g[0] / w[0], committed.get(name)
        verdict = "new row" if was is None else ("ok" if ratio >= was * TOLERANCE else "REGRESSED")
        print(f"{name:<24} ratio {ratio:.2f} committed {was if was is not None else '-'}: {verdict}")
        if verdict == "REGRESSED":
            failed.append(name)
    if failed:
        print(f"bench-check: {len(failed)} row(s) more than {1 - TOLERANCE:.0%} below docs/benchmarks.md: {', '.join(failed)}")
        return 1
    print("bench-check: every ratio within 25% of docs/benchmarks.md")
    return 0


def write_report(results, ceiling, floor, rss, versions, claims, plugins, cluster, door, traces):
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), "unknown CPU")
    lines = [
        "# Benchmarks",
        "",
        "Regenerated by `make bench` (`bench/harness.py`): its own redis-server, webdis and gateway",
        f"(release build) on loopback; wrk with 2 threads and {CONNECTIONS} connections, {DURATION} per run,",
        f"gateway and webdis runs alternating {REPEATS} times per row, the median run of each shown;",
        "everything on the same machine, so the load generator competes with what it measures.",
        "",
        f"Machine: {os.cpu_count()} cores, {cpu}. Versions: {', '.join(versions.values())}.",
        "",
        f"Commands: `wrk -t2 -c{CONNECTIONS} -d{DURATION} --latency -s bench/wrk/<script>.lua <url>` per row",
        "(scripts and URLs in `bench/harness.py`), gateway config `bench/sluice-bench.toml`,",
        f"`redis-benchmark -t get,set -c {CONNECTIONS} -n 300000 -q` for the floor.",
        "",
        "CPU µs/req: the server process's user + system time over the run (`/proc/<pid>/stat`)",
        "divided by the requests wrk completed; Redis cmds/req: `INFO commandstats` calls over the",
        "run (commands inside scripts included) divided by the same; Redis µs/req: the",
        "redis-server's CPU over the run, divided by the same (it shares the 2 cores).",
        "Where each row's time goes, and what bounds the rows short of their targets:",
        "[performance.md](performance.md).",
        "",
        "| operation | gateway req/s | p50 ms | p99 ms | CPU µs/req | Redis cmds/req | Redis µs/req | webdis req/s | p50 ms | p99 ms | CPU µs/req | Redis µs/req | gateway / webdis |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, g, w in results:
        lines.append(f"| {name} | {g[0]:,.0f} | {g[1]:.2f} | {g[2]:.2f} | {g[3]:.1f} | {g[4]:.2f} | {g[5]:.1f} | "
                     f"{w[0]:,.0f} | {w[1]:.2f} | {w[2]:.2f} | {w[3]:.1f} | {w[5]:.1f} | {g[0] / w[0]:.2f}× |")
    hot = results[0][1]
    lines += [
        "",
        f"Ceiling, same run: a bare hyper 1 server (`host/examples/ceiling.rs`, the gateway's runtime shape, a fixed "
        f"{31}-byte JSON body) answers {ceiling[0]:,.0f} req/s at {ceiling[3]:.1f} µs CPU per request "
        f"(p50 {ceiling[1]:.2f} ms, p99 {ceiling[2]:.2f} ms). The hot GET is {hot[0] / ceiling[0]:.2f}× "
        f"its req/s at {hot[3] / max(ceiling[3], 0.01):.2f}× its CPU per request.",
        "",
        f"Floor, redis-benchmark direct ({CONNECTIONS} connections, unpipelined): "
        f"GET {float(floor.get('GET', 0)):,.0f}/s, SET {float(floor.get('SET', 0)):,.0f}/s.",
        "",
        f"Gateway peak RSS over the whole run: {rss:.1f} MiB.",
        "",
        "Equivalent operations: the gateway's GET/PUT go through the domain's WebAssembly policy",
        "and store MessagePack with a TTL (`SET … PX`); webdis runs the bare command (`SET` with",
        "`PX` for PUT). Hot GET reads 10 keys (the gateway answers from its near cache); miss-path",
        "GET reads 1000 keys in a domain without near cache. mget is 100 keys in one request. The",
        "rate limit is the same Lua token bucket (EVALSHA) on both; events are one XADD with an",
        "approximate MAXLEN (the gateway's policy adds to two streams per event).",
        "",
        "![gateway and webdis req/s](benchmarks.svg)",
        "",
        "## The door: HTTPS, HTTP/2, and the tail at a fixed rate",
        "",
        "The hot GET over HTTPS against the bare ceiling in the same TLS set-up (the same",
        "certificate, rustls with ring, ALPN; `host/examples/ceiling.rs --tls`), same run: HTTP/1.1",
        f"with wrk as above, HTTP/2 with `h2load -t2 -c{CONNECTIONS} -m 10 -D {DURATION.removesuffix('s')}` (10 streams",
        "per connection; percentiles from its `--log-file`). Connections are opened once per run.",
        "",
        "| operation | gateway req/s | p50 ms | p99 ms | ceiling req/s | p50 ms | p99 ms | gateway / ceiling |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *[f"| hot GET, {name} | {r[0]:,.0f} | {r[1]:.2f} | {r[2]:.2f} | {r[3]:,.0f} | {r[4]:.2f} | {r[5]:.2f} | "
          f"{r[0] / r[3]:.2f}× |" for name, r in door["tls"]],
        "",
        f"Below saturation: {RATE_CONNECTIONS * RATE_PER_CONNECTION:,} req/s "
        f"(`h2load --h1 -t2 -c{RATE_CONNECTIONS} --rps {RATE_PER_CONNECTION} -D {DURATION.removesuffix('s')} --log-file`),",
        "plain HTTP/1.1, gateway and webdis alternating, the run with the median p99 of each shown;",
        "percentiles of every request's time in the log.",
        "",
        "| operation | gateway p50 ms | p99 ms | p99.9 ms | webdis p50 ms | p99 ms | p99.9 ms | gateway p99 / webdis p99 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *[f"| {name} | {g[1]:.2f} | {g[2]:.2f} | {g[3]:.2f} | {w[1]:.2f} | {w[2]:.2f} | {w[3]:.2f} | {g[2] / w[2]:.2f}× |"
          for name, g, w in door["rate"]],
        "",
        "## On a Redis Cluster",
        "",
        f"The same gateway build with `redis.cluster = true` in front of a local cluster of 3 primaries and",
        "3 replicas (`redis-cli --cluster create --cluster-replicas 1`, ports 16401-16406), same wrk runs;",
        "the single-Redis gateway's figure of the same run beside it. Six redis-servers share the",
        "machine's cores with the gateway and wrk.",
        "",
        "| operation | cluster req/s | p50 ms | p99 ms | CPU µs/req | single Redis req/s | cluster / single |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *[f"| {name} | {c[0]:,.0f} | {c[1]:.2f} | {c[2]:.2f} | {c[3]:.1f} | "
          f"{(single[0] if single else 0):,.0f} | {(c[0] / single[0] if single else 0):.2f}× |"
          for name, c, single in cluster],
        "",
        "## The analysis's claims, measured",
        "",
        "`cargo bench -p sluice --bench claims`, against the same redis-server.",
        "",
        "| claim | measured | verdict |",
        "| --- | --- | --- |",
        *[f"| {c} | {m} | {v} |" for c, m, v in claims],
        "",
        "## Traces",
        "",
        "The bench gateway (traces off: `[tracing]` unset) beside a second one exporting every",
        "request's spans (`otlp_endpoint` set, `sample_ratio = 1.0`) to an OTLP/HTTP sink on",
        "loopback that answers 200, alternating runs, median of them; CPU is the gateway's, the",
        "export thread's included. Off, a request checks one flag; the rows above are that build.",
        "",
        "| row | off req/s | on req/s | on/off | CPU µs/req off | on |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *[f"| {n} | {off[0]:,.0f} | {on[0]:,.0f} | {on[0] / off[0]:.2f}× | {off[3]:.1f} | {on[3]:.1f} |"
          for n, off, on in traces],
        "",
        "## The plugin decision",
        "",
        "`cargo bench -p sluice --bench plugin`: one `plan` call on a warm instance through wasmtime,",
        "beside the same policy compiled natively; `Get/key` is one `plan-batch` call of a 100-key",
        "mget's requests, per key. Median ns of 21 batches (SDK and contract 0.3).",
        "",
        "```",
        plugins[0].strip(),
        "```",
        "",
        "## A policy's cost by language",
        "",
        "The same bench, per example policy: the component's size; its compile (`Component::new`, wall",
        "time on this machine's 2 cores) and its load from `plugins.cache_dir`; a new instance (made,",
        "configured and asked once, past the 4 made at load); the linear memory and the RSS each of 16",
        "more warm instances added; and the median decision on a warm instance (price: GET, cache: PUT).",
        "Python is `sdk/python` on componentize-py 0.25.1 (CPython 3.14), TypeScript `sdk/js` on",
        "jco 1.35 with componentize-js 0.23 (StarlingMonkey).",
        "",
        "```",
        plugins[1].strip(),
        "```",
        "",
        "Hot reload under load (`tests/e2e/reload.rs`,",
        "`python_and_typescript_policies_replaced_under_load_fail_no_request`: 8 clients writing and",
        "reading back while fixed-ttl's domain is replaced by a Python policy, then by a TypeScript one;",
        "the write-to-live time of each, and the request pairs served; any failed request fails the",
        "test):",
        "",
        "```",
        plugins[2],
        "```",
        "",
    ]
    (ROOT / "docs" / "benchmarks.md").write_text("\n".join(lines))
    (ROOT / "docs" / "benchmarks.svg").write_text(svg(results))


def svg(results):
    width, bar, gap, left = 760, 14, 16, 190
    top = max(max(g[0], w[0]) for _, g, w in results)
    height = 40 + len(results) * (2 * bar + gap)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<text x="{left}" y="16">req/s at {CONNECTIONS} connections: gateway (blue) and webdis (grey)</text>']
    y = 30
    for name, g, w in results:
        out.append(f'<text x="{left - 8}" y="{y + bar + 4}" text-anchor="end">{name}</text>')
        for val, color in ((g[0], "#2b6cb0"), (w[0], "#a0aec0")):
            length = (width - left - 90) * val / top
            out.append(f'<rect x="{left}" y="{y}" width="{length:.1f}" height="{bar - 2}" fill="{color}"/>')
            out.append(f'<text x="{left + length + 4:.1f}" y="{y + bar - 4}">{val:,.0f}</text>')
            y += bar
        y += gap
    out.append("</svg>")
    return "\n".join(out)


if __name__ == "__main__":
    main()
