#!/usr/bin/env python3
"""scenarios.py -- tolk's load benchmark: the five scenarios of
docs/performance.md against a whole system, side by side with the floor
(plain TCP, bench/floor.c) and a peer (Debian's libwebsockets-test-server
and its lws-mirror-protocol), all driven by the same generator
(bench/loadgen.c), printed as one table.

Why a script: each scenario starts its own tolk system (tools/tolk-stack
under supervisord, Redis and APy included, on private loopback ports),
runs loadgen against it while sampling the processes' CPU time and memory
from /proc, reads the workers' own figures from their status feeds
(tolk-monitor --once --json), and stops it again. Keeping that plumbing
out of loadgen keeps the generator a generator.

Nothing here passes or fails on speed: the exit status is non-zero only
when a scenario could not run. Every figure lands in RESULTS/results.csv,
the table in RESULTS/table.txt, the listener-count sweep in
RESULTS/sweep.dat with gnuplot's PNGs beside it.

usage: bench/scenarios.py [--only 1,2,3,4,5,sweep] [--quick] [--results DIR]
                          [--listeners N] [--sessions N] [--duration S]
"""
import argparse
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BUILD", "build")
BIN = os.path.join(TOP, BUILD, "bin")
LOADGEN = os.path.join(TOP, BUILD, "bench", "loadgen")
FLOOR = os.path.join(TOP, BUILD, "bench", "floor")
PEER = "/usr/bin/libwebsockets-test-server"
PORT = int(os.environ.get("BENCH_PORT", "18680"))  # gateways PORT..PORT+n-1
REDIS_PORT = PORT - 1
APY_PORT = PORT - 43
FLOOR_PORT = PORT + 20
PEER_PORT = PORT + 21
SECRET = "bench-secret-0123456789abcdef0123456789"
TICK = os.sysconf("SC_CLK_TCK")
SRC = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ /proc


def proc_cpu_s(pid):
    """User + system CPU seconds of one process (0 when it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def proc_rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(ppid):
    """{pid: command name} of ppid's children: a stack's processes are
    supervisord's children, whatever else runs on the machine."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
            name = s[s.index("(") + 1 : s.rindex(")")]
            if int(s.rsplit(")", 1)[1].split()[1]) == ppid:
                out[int(d)] = name
        except (OSError, ValueError):
            continue
    return out


def kernel_mem_kb():
    """Slab plus TCP buffer pages: what the kernel spends on sockets."""
    slab = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Slab:"):
                slab = int(line.split()[1])
    tcp_pages = 0
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                parts = line.split()
                tcp_pages = int(parts[parts.index("mem") + 1])
    return slab + tcp_pages * 4


# ------------------------------------------------------------------ systems


def stop_process(proc, sig, timeout):
    """Ask a process to stop with sig; kill it if it has not within timeout s."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Stack:
    """One whole tolk system under supervisord, from tools/tolk-stack."""

    def __init__(self, name, results, gateways=1, overrides=None, control=2, audio=1):
        self.dir = os.path.join(results, "stack-" + name)
        self.gateways = gateways
        shutil.rmtree(self.dir, ignore_errors=True)
        env = dict(os.environ)
        env.update(
            {
                "TOLK_BIN": BIN,
                "TOLK_PORT": str(PORT),
                "TOLK_REDIS_PORT": str(REDIS_PORT),
                "TOLK_APY_PORT": str(APY_PORT),
                "TOLK_GATEWAYS": str(gateways),
                "TOLK_CONTROL_WORKERS": str(control),
                "TOLK_AUDIO_WORKERS": str(audio),
                "TOLK_JWT_SECRET": SECRET,
                "TOLK_SESSION_CREATE_PER_HOUR": "100000",
                "TOLK_LOG_LEVEL": "warn",
            }
        )
        env.update(overrides or {})
        self.env = env
        subprocess.run(
            [os.path.join(TOP, "tools", "tolk-stack"), self.dir],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self.sup = subprocess.Popen(
            ["supervisord", "-n", "-c", os.path.join(self.dir, "supervisord.conf")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_ready()

    def _wait_ready(self):
        deadline = time.time() + 60
        ports = [PORT + i for i in range(self.gateways)]
        while time.time() < deadline:
            ok = 0
            for p in ports:
                r = subprocess.run(
                    ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:%d/readyz" % p],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                ok += r.returncode == 0
            if ok == len(ports) and self._apy_ready():
                time.sleep(1.5)  # the audio worker's first APy discovery
                return
            time.sleep(0.3)
        self.stop()
        raise RuntimeError("the tolk system in %s did not become ready" % self.dir)

    def _apy_ready(self):
        r = subprocess.run(
            ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:%d/listPairs" % APY_PORT],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return r.returncode == 0

    def procs(self):
        return children(self.sup.pid)

    def pids(self, prefix):
        return [p for p, n in self.procs().items() if n.startswith(prefix)]

    def monitor(self):
        """Every process's counters, {kind: [counters...]}."""
        r = subprocess.run(
            [os.path.join(BIN, "tolk-monitor"), "--once", "--json"],
            env=dict(self.env, TOLK_CONFIG=os.path.join(self.dir, "tolk.conf")),
            capture_output=True,
            text=True,
        )
        out = {}
        try:
            snap = json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return out
        for p in snap.get("processes", []):
            out.setdefault(p.get("kind", "?"), []).append(p.get("counters", {}))
        return out

    def stop(self):
        stop_process(self.sup, signal.SIGTERM, 40)  # the gateways drain first


class Server:
    """The floor or the peer: one process, its CPU time is the figure."""

    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        if self.proc.poll() is not None:
            raise RuntimeError("%s did not start" % argv[0])

    def procs(self):
        return {self.proc.pid: os.path.basename(self.proc.args[0])}

    def stop(self):
        stop_process(self.proc, signal.SIGINT, 10)


# ------------------------------------------------------------------ runs


RUN_NO = [0]


def loadgen(args, system, sample_prefix=None, results=None):
    """Run loadgen against a system while sampling its processes every
    0.25 s. Returns loadgen's figures plus cpu_s (per process name, over
    the measurement window loadgen reports), rss_max_kb (the sampled
    processes named sample_prefix) and kernel memory."""
    argv = [LOADGEN, "--quiet"] + [str(a) for a in args]
    log(" ".join(os.path.basename(a) if a == LOADGEN else a for a in argv))
    samples = []  # (monotonic ns, {pid: cpu_s}, rss_kb of sample_prefix, kernel kb)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    names = system.procs()
    while proc.poll() is None:
        cpu = {p: proc_cpu_s(p) for p in names}
        rss = sum(proc_rss_kb(p) for p, n in names.items() if sample_prefix and n.startswith(sample_prefix))
        samples.append((time.monotonic_ns(), cpu, rss, kernel_mem_kb()))
        time.sleep(0.25)
    out = proc.stdout.read()
    if results:
        RUN_NO[0] += 1
        mode = args[args.index("--mode") + 1] if "--mode" in args else "run"
        with open(os.path.join(results, "loadgen-%02d-%s.txt" % (RUN_NO[0], mode)), "w") as f:
            f.write("# " + " ".join(argv) + "\n" + out)
    figures = {}
    for line in out.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2:
            try:
                figures[parts[0]] = float(parts[1])
            except ValueError:
                figures[parts[0]] = parts[1].strip()
    if proc.returncode != 0:
        raise RuntimeError("loadgen failed (exit %d)" % proc.returncode)
    # CPU over the measurement window: the samples nearest its ends
    t0 = figures.get("measure_start_ns")
    t1 = figures.get("measure_end_ns")
    if samples and isinstance(t0, float) and isinstance(t1, float):
        first = min(samples, key=lambda s: abs(s[0] - t0))
        last = min(samples, key=lambda s: abs(s[0] - t1))
        window = (last[0] - first[0]) / 1e9
    elif samples:
        first, last = samples[0], samples[-1]
        window = (last[0] - first[0]) / 1e9
    else:
        first = last = (0, {}, 0, 0)
        window = 0
    by_name = {}
    for p, n in names.items():
        key = re.sub(r"[-_]\d+$", "", n)
        by_name[key] = by_name.get(key, 0.0) + last[1].get(p, 0.0) - first[1].get(p, 0.0)
    figures["cpu_s"] = by_name
    figures["cpu_window_s"] = window
    figures["rss_max_kb"] = max((s[2] for s in samples), default=0)
    figures["kernel_max_kb"] = max((s[3] for s in samples), default=0)
    return figures


def per_delivery_us(cpu_s, deliveries):
    return cpu_s * 1e6 / deliveries if deliveries else float("nan")


def ratio(a, b):
    """a / b, or n/a when either is missing or b is zero (a CPU time under
    one clock tick reads as zero)."""
    try:
        a, b = float(a), float(b)
    except (TypeError, ValueError):
        return float("nan")
    return a / b if b and a == a and b == b else float("nan")


# ------------------------------------------------------------------ table


class Table:
    """Rows of (scenario, figure, tolk, floor, peer, target), printed once."""

    def __init__(self, results):
        self.rows = []
        self.results = results

    def add(self, scenario, figure, tolk, floor="", peer="", target=""):
        self.rows.append([scenario, figure, fmt(tolk), fmt(floor), fmt(peer), target])

    def write(self):
        head = ["scenario", "figure", "tolk", "floor", "peer", "target"]
        widths = [max(len(str(r[i])) for r in self.rows + [head]) for i in range(6)]
        lines = []
        for r in [head, ["-" * w for w in widths]] + self.rows:
            lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
        text = "\n".join(lines)
        print(text)
        with open(os.path.join(self.results, "table.txt"), "w") as f:
            f.write(text + "\n")
        with open(os.path.join(self.results, "results.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(head)
            w.writerows(self.rows)


def fmt(v):
    if isinstance(v, float):
        if v != v:
            return "n/a"
        if abs(v) >= 100:
            return "%.0f" % v
        if abs(v) >= 10:
            return "%.1f" % v
        return "%.2f" % v
    return v


def ms(us):
    return us / 1000.0 if isinstance(us, float) else float("nan")


# ------------------------------------------------------------------ scenarios


def urls(n):
    return ",".join("127.0.0.1:%d" % (PORT + i) for i in range(n))


def sources(conns, ports):
    """Source addresses for conns connections: one per 15,000, so no
    address runs short of ephemeral ports (28,000 each, and TIME_WAITs of
    earlier runs hold some)."""
    n = min(len(SRC), int(conns // 15000) + 1)
    return ["--src", ",".join(SRC[:n])]


def scenario_capacity(t, a):
    """1. Idle listeners up to sessions x listeners, across 3 gateways."""
    gws = 3
    st = Stack("capacity", a.results, gateways=gws)
    try:
        base_rss = sum(proc_rss_kb(p) for p in st.pids("tolk-gateway"))
        base_kernel = kernel_mem_kb()
        f = loadgen(
            [
                "--mode", "tolk", "--url", urls(gws), "--procs", 3, "--sessions", a.sessions,
                "--listeners", a.listeners, "--ramp", a.ramp, "--duration", 3,
                "--audio-rate", 0, "--jwt-secret", SECRET,
            ] + sources(a.sessions * (a.listeners + 1), gws),
            st,
            "tolk-gateway",
            a.results,
        )
    finally:
        st.stop()
    conns = f.get("connections", 0) or 0
    t.add("1 capacity", "connections held", conns, "", "", ">= 50,000")
    t.add("1 capacity", "connect failures", f.get("connect_failures", float("nan")))
    t.add("1 capacity", "handshakes/s (incl. join)", f.get("handshakes_per_s", float("nan")))
    if conns:
        per = (f["rss_max_kb"] - base_rss) * 1024 / conns
        kern = (f["kernel_max_kb"] - base_kernel) * 1024 / conns
        t.add("1 capacity", "gateway user memory per idle conn (B)", per, "", "", "<= 4096")
        t.add("1 capacity", "kernel memory per conn, both ends (B)", kern)
    return f


def one_session(a, mode, listeners, duration, extra=None, name="one"):
    """One sender/speaker and `listeners` listeners at 5 messages/s:
    tolk (captions from the load-test recogniser plus setVolume at 1/s),
    the floor, or the peer. Returns loadgen's figures."""
    if mode == "tolk":
        sysm = Stack(
            name,
            a.results,
            overrides={"TOLK_ASR_ENGINE": "loadtest", "TOLK_LOADTEST_CAPTION_MS": "200"},
        )
        args = [
            "--mode", "tolk", "--url", urls(1), "--sessions", 1,
            "--listeners", listeners, "--ramp", 2000, "--duration", duration,
            "--audio-rate", 10, "--chunk-bytes", 3200, "--control-rate", 1,
            "--jwt-secret", SECRET,
        ]
        prefix = "tolk-gateway"
    elif mode == "tcp":
        sysm = Server([FLOOR, "--port", str(FLOOR_PORT)])
        args = [
            "--mode", "tcp", "--url", "127.0.0.1:%d" % FLOOR_PORT,
            "--sessions", 1, "--listeners", listeners, "--ramp", 2000,
            "--duration", duration, "--caption-rate", 5, "--message-bytes", 300,
        ]
        prefix = "floor"
    else:
        sysm = Server([PEER, "--port=%d" % PEER_PORT])
        args = [
            "--mode", "mirror", "--url", "127.0.0.1:%d" % PEER_PORT,
            "--sessions", 1, "--listeners", listeners, "--ramp", 2000,
            "--duration", duration, "--caption-rate", 5, "--message-bytes", 300,
        ]
        prefix = "libwebsockets"
    try:
        f = loadgen(args + (extra or []), sysm, prefix, a.results)
    finally:
        sysm.stop()
    return f


def fanout_cpu(f, mode):
    """CPU seconds of the process that fans out (the gateway, the floor,
    the peer) and of the whole system."""
    cpu = f["cpu_s"]
    if mode == "tolk":
        return cpu.get("tolk-gateway", 0.0), sum(cpu.values())
    total = sum(cpu.values())
    return total, total


def scenario_one_session(t, a):
    """2. One session x 500: captions 5/s, controls 1/s, vs floor and peer."""
    n = a.listeners
    res = {}
    for mode in ("tolk", "tcp", "mirror"):
        res[mode] = one_session(a, mode, n, a.duration)
    tk, fl, pr = res["tolk"], res["tcp"], res["mirror"]
    t.add("2 one session", "listeners", n)
    t.add("2 one session", "caption p50 to last listener (ms)", ms(tk.get("caption_last_p50_us")),
          ms(fl.get("caption_last_p50_us")), ms(pr.get("caption_last_p50_us")))
    t.add("2 one session", "caption p99 to last listener (ms)", ms(tk.get("caption_last_p99_us")),
          ms(fl.get("caption_last_p99_us")), ms(pr.get("caption_last_p99_us")), "<= 15")
    t.add("2 one session", "caption p99 per delivery (ms)", ms(tk.get("caption_p99_us")),
          ms(fl.get("caption_p99_us")), ms(pr.get("caption_p99_us")))
    t.add("2 one session", "control p50 to last listener (ms)", ms(tk.get("control_last_p50_us")))
    t.add("2 one session", "control p99 to last listener (ms)", ms(tk.get("control_last_p99_us")),
          "", "", "<= 20")
    cpu = {}
    for mode, f in res.items():
        d = (f.get("deliveries", 0) or 0) + (f.get("control_deliveries", 0) or 0)
        fan, total = fanout_cpu(f, mode)
        cpu[mode] = (per_delivery_us(fan, d), per_delivery_us(total, d))
    t.add("2 one session", "fan-out process CPU per delivery (us)", cpu["tolk"][0], cpu["tcp"][0],
          cpu["mirror"][0])
    t.add("2 one session", "whole-system CPU per delivery (us)", cpu["tolk"][1], cpu["tcp"][1],
          cpu["mirror"][1])
    t.add("2 one session", "tolk gateway CPU / floor's", ratio(cpu["tolk"][0], cpu["tcp"][0]), "",
          "", "<= 1.5")
    t.add("2 one session", "tolk gateway CPU / peer's", ratio(cpu["tolk"][0], cpu["mirror"][0]), "",
          "", "<= 1.2")
    t.add("2 one session", "caption last-listener p99 / floor's", ratio(
        tk.get("caption_last_p99_us"), fl.get("caption_last_p99_us")))
    t.add("2 one session", "caption last-listener p99 / peer's", ratio(
        tk.get("caption_last_p99_us"), pr.get("caption_last_p99_us")))
    return res


def scenario_full(t, a):
    """3. sessions x listeners, 2 captions/s each, 3 gateways."""
    gws = 3
    st = Stack("full", a.results, gateways=gws,
               overrides={"TOLK_ASR_ENGINE": "loadtest", "TOLK_LOADTEST_CAPTION_MS": "500"})
    try:
        f = loadgen(
            [
                "--mode", "tolk", "--url", urls(gws), "--procs", 3, "--sessions", a.sessions,
                "--listeners", a.listeners, "--ramp", a.ramp, "--duration", a.duration,
                "--audio-rate", 10, "--chunk-bytes", 3200, "--jwt-secret", SECRET,
            ] + sources(a.sessions * (a.listeners + 1), gws),
            st,
            "tolk-gateway",
            a.results,
        )
    finally:
        st.stop()
    t.add("3 full load", "sessions x listeners", "%d x %d" % (a.sessions, a.listeners))
    t.add("3 full load", "connections", f.get("connections", float("nan")))
    t.add("3 full load", "caption deliveries/s", f.get("deliveries_per_s", float("nan")), "", "",
          ">= 100,000")
    t.add("3 full load", "caption p50 (ms)", ms(f.get("caption_p50_us")))
    t.add("3 full load", "caption p99 (ms)", ms(f.get("caption_p99_us")), "", "", "<= 50")
    t.add("3 full load", "caption p99.9 (ms)", ms(f.get("caption_p999_us")))
    total = sum(f["cpu_s"].values())
    t.add("3 full load", "system CPU busy (cores)", total / f["cpu_window_s"] if f["cpu_window_s"] else float("nan"))
    return f


def scenario_ingest(t, a):
    """4. sessions speakers x 48 chunks/s of 3,200 bytes (just under the 50/s limit)."""
    st = Stack("ingest", a.results,
               overrides={"TOLK_ASR_ENGINE": "loadtest", "TOLK_LOADTEST_CAPTION_MS": "3600000"})
    try:
        f = loadgen(
            [
                "--mode", "tolk", "--url", urls(1), "--sessions", a.sessions,
                "--listeners", 0, "--ramp", 500, "--duration", a.duration,
                "--audio-rate", 48, "--chunk-bytes", 3200, "--jwt-secret", SECRET,
            ],
            st,
            "tolk-gateway",
            a.results,
        )
        time.sleep(2.5)  # two more status publications after the last chunk
        mon = st.monitor()
    finally:
        st.stop()
    audio = (mon.get("audio") or [{}])[0]
    gw = (mon.get("gateway") or [{}])[0]
    sent = f.get("audio_chunks_sent", float("nan"))
    t.add("4 ingest", "chunks/s offered", sent / a.duration if isinstance(sent, float) else sent, "", "", "5,000")
    t.add("4 ingest", "chunks sent / at the gateway / recognised", "%s / %s / %s" % (
        fmt(sent), fmt(float(gw.get("audio_chunks", 0))), fmt(float(audio.get("chunks_in", 0)))))
    dropped = (float(audio.get("chunks_dropped", 0)) + float(gw.get("audio_dropped_rate", 0))
               + float(gw.get("audio_dropped_paused", 0)))
    t.add("4 ingest", "chunks dropped (worker + gateway)", dropped, "", "", "0")
    t.add("4 ingest", "gateway -> worker hop p50 (ms)", float(audio.get("chunk_hop_us_p50", 0)) / 1000)
    t.add("4 ingest", "gateway -> worker hop p99 (ms)", float(audio.get("chunk_hop_us_p99", 0)) / 1000, "", "", "<= 2")
    t.add("4 ingest", "chunk processing p95 (ms)", float(audio.get("chunk_latency_us_p95", 0)) / 1000, "", "", "< 50")
    return f, mon


def scenario_slow(t, a):
    """5. 5 % of listeners stop reading; captions at 50/s so queues fill fast."""
    res = {}
    for slow in (0, 5):
        st = Stack("slow%d" % slow, a.results,
                   overrides={"TOLK_ASR_ENGINE": "loadtest", "TOLK_LOADTEST_CAPTION_MS": "20"})
        try:
            res[slow] = loadgen(
                [
                    "--mode", "tolk", "--url", urls(1), "--sessions", 1,
                    "--listeners", a.listeners, "--ramp", 2000, "--duration", a.slow_duration,
                    "--audio-rate", 10, "--chunk-bytes", 3200, "--slow", slow,
                    "--jwt-secret", SECRET,
                ],
                st,
                "tolk-gateway",
                a.results,
            )
            time.sleep(1.5)
            res[slow]["gateway"] = (st.monitor().get("gateway") or [{}])[0]
        finally:
            st.stop()
    b, s = res[0], res[5]
    t.add("5 slow consumers", "others' caption p99, none slow (ms)", ms(b.get("caption_p99_us")))
    t.add("5 slow consumers", "others' caption p99, 5 % slow (ms)", ms(s.get("caption_p99_us")), "", "",
          "unchanged")
    t.add("5 slow consumers", "closed by the gateway (queue full) / slow", "%s / %s" % (
        fmt(float(s["gateway"].get("slow_closed", 0))), fmt(s.get("slow_listeners", 0))), "", "",
        "all")
    t.add("5 slow consumers", "closes the slow clients saw on resuming", s.get("slow_close_codes", ""))
    t.add("5 slow consumers", "other connections dropped", s.get("dropped", float("nan")), "", "", "0")
    t.add("5 slow consumers", "gateway RSS max, none / 5 % slow (MB)",
          "%s / %s" % (fmt(b["rss_max_kb"] / 1024.0), fmt(s["rss_max_kb"] / 1024.0)))
    return res


def scenario_sweep(t, a):
    """Caption latency percentiles against listener count, three servers."""
    counts = [50, 100, 200, 500] if not a.quick else [20, 50]
    path = os.path.join(a.results, "sweep.dat")
    rows = []
    for n in counts:
        row = [n]
        for mode in ("tolk", "tcp", "mirror"):
            f = one_session(a, mode, n, a.sweep_duration, name="sweep")
            row += [ms(f.get("caption_p50_us")), ms(f.get("caption_p99_us")),
                    ms(f.get("caption_last_p99_us"))]
        rows.append(row)
    with open(path, "w") as out:
        out.write("# listeners tolk_p50 tolk_p99 tolk_last_p99 floor_p50 floor_p99 floor_last_p99 "
                  "peer_p50 peer_p99 peer_last_p99 (ms)\n")
        for r in rows:
            out.write(" ".join(fmt(v) if isinstance(v, float) else str(v) for v in r) + "\n")
    plot(a.results, path)
    t.add("sweep", "listener counts", ",".join(str(c) for c in counts), "", "", "see sweep.png")


def plot(results, data):
    if not shutil.which("gnuplot"):
        log("gnuplot is not installed: no plots")
        return
    script = """
set terminal pngcairo size 900,540 font ",11"
set output '%(out)s/sweep-p99.png'
set title 'Caption latency p99 vs listeners in one session (5 messages/s)'
set xlabel 'listeners'
set ylabel 'ms'
set logscale x
set key top left
set grid
plot '%(data)s' using 1:3 with linespoints title 'tolk p99', \\
     '' using 1:4 with linespoints title 'tolk last listener p99', \\
     '' using 1:6 with linespoints title 'floor (TCP) p99', \\
     '' using 1:9 with linespoints title 'peer (lws mirror) p99'
set output '%(out)s/sweep-p50.png'
set title 'Caption latency p50 vs listeners in one session (5 messages/s)'
plot '%(data)s' using 1:2 with linespoints title 'tolk p50', \\
     '' using 1:5 with linespoints title 'floor (TCP) p50', \\
     '' using 1:8 with linespoints title 'peer (lws mirror) p50'
""" % {"out": results, "data": data}
    subprocess.run(["gnuplot"], input=script, text=True, check=False)


def main():
    ap = argparse.ArgumentParser(description="tolk load scenarios")
    ap.add_argument("--only", default="1,2,3,4,5,sweep")
    ap.add_argument("--quick", action="store_true", help="tiny numbers: a smoke run")
    ap.add_argument("--results", default=os.path.join(TOP, BUILD, "bench-results"))
    ap.add_argument("--sessions", type=int, default=100)
    ap.add_argument("--listeners", type=int, default=500)
    ap.add_argument("--ramp", type=int, default=1000)
    ap.add_argument("--duration", type=int, default=15)
    a = ap.parse_args()
    a.slow_duration = 30
    a.sweep_duration = 6
    if a.quick:
        a.sessions, a.listeners, a.duration, a.slow_duration, a.sweep_duration = 2, 20, 3, 4, 2
    os.makedirs(a.results, exist_ok=True)
    for tool in (LOADGEN, FLOOR):
        if not os.access(tool, os.X_OK):
            sys.exit("bench: %s is not built (make bench builds it)" % tool)
    only = set(a.only.split(","))
    t = Table(a.results)
    steps = [("1", scenario_capacity), ("2", scenario_one_session), ("3", scenario_full),
             ("4", scenario_ingest), ("5", scenario_slow), ("sweep", scenario_sweep)]
    failed = 0
    started = time.time()
    for key, fn in steps:
        if key not in only:
            continue
        t0 = time.time()
        try:
            fn(t, a)
        except Exception as e:  # one scenario failing must not hide the others
            log("scenario %s could not run: %s" % (key, e))
            t.add(key, "could not run", str(e)[:60])
            failed += 1
        log("scenario %s took %.0f s" % (key, time.time() - t0))
    t.add("all", "wall time (s)", time.time() - started)
    t.write()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
