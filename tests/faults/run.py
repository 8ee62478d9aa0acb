#!/usr/bin/env python3
"""run.py -- tolk's fault-injection test: kill and stop tolk's processes
one after another under a standing load and check that the system heals.

What it asks (the issue; verbatim in tests/faults/README.md):
- under 4 sessions x 100 listeners (each session's speaker streaming), SIGKILL
  a control worker, a status worker, an audio worker, the sweeper, a
  gateway and redis-server (append-only file on): supervisord restarts each
  within 1 s and never marks anything FATAL; listeners on the surviving
  gateways keep their connections and get captions again within 3 s; no
  caption arrives twice or out of order, every gap shows in `seq`; after
  the gateway's death no listener slot stays taken; after Redis's restart
  no acknowledged state change is lost and every process reconnects by
  itself;
- SIGSTOP a control worker and then an audio worker for 10 s: it is
  declared dead and routed around, and after SIGCONT it does not act on
  stale work;
- a slow listener (one that stops reading) is closed at its queue bound
  and costs the others nothing;
- (issue 14) a rolling restart of every worker under load, each by
  supervisorctl restart (SIGTERM), the next once its replacement is live:
  no final lost or repeated, no speech left uncaptioned, every setVolume
  answered once.

How: one whole system from tools/tolk-stack (2 gateways, 2 of each worker
kind, the sweeper, Redis, APy; the load-test recogniser emitting a final
every 250 ms of audio) on private loopback ports picked at random, under
supervisord. bench/loadgen is the load and the listeners' judge
(--check-seq: every final's seq per listener, silences, and per SIGUSR1
mark how long the survivors' captions stopped; --speaker-refresh: a
speaker on a dying gateway comes back on the other one). A thread polls
supervisord's XML-RPC every 50 ms for pids and states. Redis is read with
a few lines of RESP, clients of our own (setVolume probes, joins) speak
WebSocket with the standard library, and the workers' status feeds are
read with build/bin/tolk-monitor.

Exit 0 when every check passed, 1 otherwise (2: the system could not be
started). Everything is stopped in every case. The table goes to stdout,
the figures to build/fault-results/latest.json, the system's logs stay in
build/fault-results/stack-<pid>/logs/ when something failed.

usage: tests/faults/run.py [--quick] [--keep] [--results DIR] [--only main,slow,rolling]
"""
import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import random
import select
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
import xmlrpc.client

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", "build")
BIN = os.path.join(TOP, BUILD, "bin")
LOADGEN = os.path.join(TOP, BUILD, "bench", "loadgen")
SECRET = "faults-secret-0123456789abcdef0123456789"
CAPTION_MS = 250  # the load-test recogniser's period
HEARTBEAT_MS = 1000  # deploy/tolk.conf: heartbeat_ms
HEARTBEAT_MISSES = 3  # and heartbeat_misses
DEATH_MS = HEARTBEAT_MS * HEARTBEAT_MISSES  # when a silent worker is declared dead
SWEEP_MS = 1000  # sweep_interval_ms

# the requirement's bounds
RESTART_MS = 1000  # supervisord restarts a killed process within this
RESUME_MS = 3000  # captions come back on every surviving listener within this
# a stopped worker is declared dead after DEATH_MS, on the gateway's next
# heartbeat tick (up to HEARTBEAT_MS later); the work moves then
REROUTE_MS = DEATH_MS + HEARTBEAT_MS
# what our measurements add: probes every 150 ms, /readyz samples every 200 ms
PROBE_SLACK_MS = 250
STOP_RESUME_MS = REROUTE_MS + RESUME_MS  # captions after an audio worker stopped
SLOT_MS = DEATH_MS + 2 * SWEEP_MS + 4000  # a dead gateway's listeners are counted out by then
# the rolling restart: supervisorctl restart sends SIGTERM and waits this long
# (tools/tolk-stack's stopwaitsecs) before SIGKILL; an orderly stop ends before
STOPWAIT_MS = 15000
ROLL_LIVE_MS = 5000  # from the replacement's start until every gateway routes to it
ROLL_LEAD_S = 0.3  # the mark comes this long before SIGTERM: a control in flight then is the restart's
ROLL_CONTROL_RATE = 5  # setVolume a second per speaker (tolk allows 10)
# the drain after the last restart: the worker ends the last utterance after
# 1.5 s without audio (STREAM_GAP_MS), at its next 1 s housekeeping tick
ROLL_DRAIN_S = 4
ROLL_TALK_SLACK_MS = 25  # ms: a handover skews the talk clock by ~1 ms; a lost utterance is a multiple of 50 ms here


def log(msg):
    print("faults: " + msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ ports


def port_free(port):
    """True when nothing listens on 127.0.0.1:port (and we may bind it)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_ports(count):
    """The first of count consecutive free ports, at random below or above
    the ephemeral range (tests/support/harness.c's harness_free_ports):
    other tests run on this machine at the same time."""
    lo_eph, hi_eph = 32768, 60999
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo_eph, hi_eph = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        pass
    ranges = [(10000, lo_eph - count), (hi_eph + 1, 65535 - count)]
    ranges = [r for r in ranges if r[1] >= r[0]]
    rnd = random.SystemRandom()
    for _ in range(500):
        lo, hi = rnd.choice(ranges)
        base = rnd.randint(lo, hi)
        if all(port_free(base + i) for i in range(count)):
            return base
    raise RuntimeError("no free ports")


# ------------------------------------------------------------------ Redis


class Redis:
    """A few lines of RESP: enough for HGET and friends, reconnecting after
    a failure (Redis is one of the processes that get killed)."""

    def __init__(self, port):
        self.port = port
        self.sock = None
        self.rf = None

    def close(self):
        if self.sock:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = self.rf = None

    def _read(self):
        line = self.rf.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError("redis: " + rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.rf.read(n + 2)
            return data[:-2].decode(errors="replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise ConnectionError("redis: unexpected reply %r" % line)

    def cmd(self, *args, timeout=2.0):
        """One command; raises ConnectionError/OSError when Redis is away."""
        try:
            if not self.sock:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
                self.rf = self.sock.makefile("rb")
            self.sock.settimeout(timeout)
            out = b"*%d\r\n" % len(args)
            for a in args:
                a = str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
            self.sock.sendall(out)
            return self._read()
        except (OSError, ConnectionError, ValueError):
            self.close()
            raise

    def try_cmd(self, *args):
        """cmd, or None when Redis cannot be reached or answers an error
        (LOADING while it reads its append-only file after a restart)."""
        try:
            return self.cmd(*args)
        except (OSError, ConnectionError, ValueError, RuntimeError):
            return None


# ------------------------------------------------------------------ WebSocket


class WsClosed(Exception):
    def __init__(self, code):
        super().__init__("closed with %s" % code)
        self.code = code


class Ws:
    """A minimal RFC 6455 client: masked text frames out, whole messages in."""

    def __init__(self, port, path, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        req = (
            "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
            % (path, port, key)
        )
        self.sock.sendall(req.encode())
        buf = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in buf:
            if time.monotonic() > deadline:
                raise OSError("no handshake answer")
            chunk = self.sock.recv(4096)
            if not chunk:
                raise OSError("closed during the handshake")
            buf += chunk
        head, self.buf = buf.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise OSError("handshake refused: %r" % head.split(b"\r\n")[0])
        self.parts = b""
        self.closed = None

    def send(self, obj):
        data = json.dumps(obj).encode()
        mask = os.urandom(4)
        n = len(data)
        if n < 126:
            head = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(head + mask + body)

    def _need(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError()
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError()
            if not chunk:
                raise WsClosed(1006)
            self.buf += chunk

    def recv(self, timeout):
        """The next text message as a dict, or None after timeout s.
        Raises WsClosed when the server closed."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._need(2, deadline)
                b0, b1 = self.buf[0], self.buf[1]
                n, off = b1 & 0x7F, 2
                if n == 126:
                    self._need(4, deadline)
                    n, off = struct.unpack("!H", self.buf[2:4])[0], 4
                elif n == 127:
                    self._need(10, deadline)
                    n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
                self._need(off + n, deadline)
                payload, self.buf = self.buf[off : off + n], self.buf[off + n :]
                op = b0 & 0x0F
                if op == 8:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                    self.closed = code
                    raise WsClosed(code)
                if op == 9:  # ping: pong
                    mask = os.urandom(4)
                    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
                    self.sock.sendall(struct.pack("!BB", 0x8A, 0x80 | len(payload)) + mask + body)
                    continue
                if op in (0, 1):
                    self.parts += payload
                    if b0 & 0x80:
                        text, self.parts = self.parts, b""
                        try:
                            return json.loads(text)
                        except ValueError:
                            continue
                # binary frames and pongs: nothing for us
        except TimeoutError:
            return None

    def wait_for(self, types, timeout):
        """Messages until one of types comes (returned) or timeout (None)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            m = self.recv(left)
            if m and m.get("type") in types:
                return m

    def close(self):
        try:
            self.sock.sendall(struct.pack("!BBH", 0x88, 0x82, 0) + struct.pack("!H", 1000))
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(sub):
    """An HS256 speaker token for the system's secret."""
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps({"sub": sub, "exp": int(time.time()) + 3600}).encode())
    sig = hmac.new(SECRET.encode(), (head + "." + body).encode(), hashlib.sha256).digest()
    return head + "." + body + "." + b64url(sig)


class Speaker:
    """A speaker of our own on one gateway: creates a session and sends
    control actions whose acknowledgements we can read."""

    count = 0

    def __init__(self, port):
        Speaker.count += 1
        sub = "faults-%d-%d-%d" % (os.getpid(), int(time.time()), Speaker.count)
        self.ws = Ws(port, "/ws?action=createSession&sourceLanguage=en&token=" + token(sub))
        m = self.ws.wait_for(("sessionCreated", "error"), 10)
        if not m or m.get("type") != "sessionCreated":
            raise RuntimeError("createSession failed: %r" % (m,))
        self.sid = m["sessionId"]
        self.acked = None  # volumeLevel of the last volumeChanged
        self.acks = []  # (monotonic, volumeLevel) of every volumeChanged

    def set_volume(self, v):
        self.ws.send({"action": "setVolume", "volumeLevel": v})

    def pump(self, timeout):
        """Read what came within timeout s; volumeChanged are recorded."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            m = self.ws.recv(left)
            if m is None:
                return
            if m.get("type") == "volumeChanged":
                self.acked = m.get("volumeLevel")
                self.acks.append((time.monotonic(), self.acked))

    def close(self):
        try:
            self.ws.send({"action": "endSession"})
        except OSError:
            pass
        self.ws.close()


def pump_all(speakers, seconds):
    """Read every speaker's messages as they come, for seconds: acks are
    stamped when they arrive, whichever socket they come on."""
    end = time.monotonic() + seconds
    while True:
        for s in speakers:
            s.pump(0.002)
        left = end - time.monotonic()
        if left <= 0:
            return
        select.select([s.ws.sock for s in speakers], [], [], min(0.02, left))


def join(port, sid, lang="en"):
    """A listener of our own joins sid: its Ws once sessionJoined came."""
    ws = Ws(port, "/ws?action=joinSession&sessionId=%s&targetLanguage=%s" % (sid, lang))
    m = ws.wait_for(("sessionJoined", "error"), 10)
    if not m or m.get("type") != "sessionJoined":
        ws.close()
        raise RuntimeError("joinSession failed: %r" % (m,))
    return ws


# ------------------------------------------------------------------ supervisord


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=5.0):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path):
        super().__init__()
        self.unix_path = path

    def make_connection(self, host):
        return UnixConnection(self.unix_path)


def supervisor_proxy(sock):
    return xmlrpc.client.ServerProxy("http://localhost", transport=UnixTransport(sock))


class Watcher(threading.Thread):
    """Polls supervisord every 50 ms for every process's pid and state:
    restarts are pid changes, and FATAL (or a BACKOFF that lasts) is seen
    whenever it happens, not only when a check looks."""

    PERIOD = 0.05

    def __init__(self, sock):
        super().__init__(daemon=True)
        self.proxy = supervisor_proxy(sock)
        self.lock = threading.Lock()
        self.state = {}  # name -> (pid, statename)
        self.changes = []  # (monotonic, name, pid, statename) when either changed
        self.bad = []  # (monotonic, name, statename) for FATAL, BACKOFF, UNKNOWN
        self.down_since = {}  # name -> monotonic when it stopped being RUNNING
        self.errors = 0
        self.stop_flag = False

    def run(self):
        while not self.stop_flag:
            t = time.monotonic()
            try:
                infos = self.proxy.supervisor.getAllProcessInfo()
            except Exception:  # supervisord busy or going away: try again
                self.errors += 1
                time.sleep(self.PERIOD)
                continue
            with self.lock:
                for i in infos:
                    name = i["name"] if i["group"] == i["name"] else "%s:%s" % (i["group"], i["name"])
                    cur = (i["pid"], i["statename"])
                    if self.state.get(name) != cur:
                        self.changes.append((t, name, cur[0], cur[1]))
                        self.state[name] = cur
                    if cur[1] in ("FATAL", "BACKOFF", "UNKNOWN"):
                        self.bad.append((t, name, cur[1]))
                    if cur[1] == "RUNNING":
                        self.down_since.pop(name, None)
                    else:
                        self.down_since.setdefault(name, t)
            time.sleep(max(0.0, self.PERIOD - (time.monotonic() - t)))

    def pid(self, name):
        with self.lock:
            st = self.state.get(name)
        return st[0] if st and st[1] == "RUNNING" else 0

    def names(self, prefix=""):
        with self.lock:
            return sorted(n for n in self.state if n.startswith(prefix))

    def pids(self):
        with self.lock:
            return {n: p for n, (p, s) in self.state.items() if s == "RUNNING"}

    def wait_new_pid(self, name, old, timeout, since=0):
        """(pid, monotonic when first seen RUNNING) of name's next process,
        among the changes from position since (mark()) on."""
        deadline = time.monotonic() + timeout
        seen = since
        while time.monotonic() < deadline:
            with self.lock:
                for t, n, p, s in self.changes[seen:]:
                    if n == name and s == "RUNNING" and p and p != old:
                        return p, t
                seen = len(self.changes)
            time.sleep(0.01)
        return 0, None

    def mark(self):
        """A position in the change list, for changes_after."""
        with self.lock:
            return len(self.changes)

    def changes_after(self, pos, name):
        """[(monotonic, pid, statename)] of name's changes since mark pos."""
        with self.lock:
            return [(t, p, s) for t, n, p, s in self.changes[pos:] if n == name]

    def bad_since(self, t0):
        with self.lock:
            return [b for b in self.bad if b[0] >= t0]

    def all_running(self):
        with self.lock:
            return all(s == "RUNNING" for p, s in self.state.values()), dict(self.state)


# ------------------------------------------------------------------ the system


def children(ppid):
    """{pid: command name} of ppid's children."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
            if int(s.rsplit(")", 1)[1].split()[1]) == ppid:
                out[int(d)] = s[s.index("(") + 1 : s.rindex(")")]
        except (OSError, ValueError, IndexError):
            continue
    return out


def http_get(port, path, timeout=2.0):
    """(status, body) of GET path on a gateway, (0, '') when it does not answer."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read().decode(errors="replace")
        c.close()
        return r.status, body
    except (OSError, http.client.HTTPException):
        return 0, ""


class LogTail:
    """The lines a log file gained since the last call (the file only grows:
    supervisord's logs are 20 MB before they rotate), so polling a log
    every 50 ms costs what was written, not the whole file."""

    def __init__(self, path):
        self.path = path
        self.off = 0
        self.part = ""

    def skip(self):
        """Forget what is in the file now: only later lines count."""
        try:
            self.off = os.path.getsize(self.path)
        except OSError:
            self.off = 0
        self.part = ""

    def lines(self):
        try:
            if os.path.getsize(self.path) < self.off:  # rotated (stdout_logfile_maxbytes)
                self.off = 0
                self.part = ""
            with open(self.path, errors="replace") as f:
                f.seek(self.off)
                data = f.read()
                self.off = f.tell()
        except OSError:
            return []
        data = self.part + data
        out = data.split("\n")
        self.part = out.pop()
        return out


class Stack:
    """One whole tolk system from tools/tolk-stack under supervisord."""

    def __init__(self, results, workers):
        self.dir = os.path.join(results, "stack-%d" % os.getpid())
        shutil.rmtree(self.dir, ignore_errors=True)
        self.port = free_ports(2)
        self.ports = [self.port, self.port + 1]
        self.redis_port = self.apy_port = None
        while self.redis_port is None or self.redis_port in self.ports:
            self.redis_port = free_ports(1)
        while self.apy_port is None or self.apy_port in self.ports + [self.redis_port]:
            self.apy_port = free_ports(1)
        self.workers = workers
        env = dict(os.environ)
        env.update(
            {
                "TOLK_BIN": BIN,
                "TOLK_PORT": str(self.port),
                "TOLK_REDIS_PORT": str(self.redis_port),
                "TOLK_APY_PORT": str(self.apy_port),
                "TOLK_GATEWAYS": "2",
                "TOLK_CONTROL_WORKERS": str(workers),
                "TOLK_STATUS_WORKERS": str(workers),
                "TOLK_AUDIO_WORKERS": str(workers),
                "TOLK_JWT_SECRET": SECRET,
                "TOLK_SESSION_CREATE_PER_HOUR": "100000",
                "TOLK_ASR_ENGINE": "loadtest",
                "TOLK_LOADTEST_CAPTION_MS": str(CAPTION_MS),
                "TOLK_SPEECH_ENABLED": "0",
                "TOLK_HEARTBEAT_MS": str(HEARTBEAT_MS),
                "TOLK_HEARTBEAT_MISSES": str(HEARTBEAT_MISSES),
                "TOLK_SWEEP_INTERVAL_MS": str(SWEEP_MS),
                "TOLK_LOG_LEVEL": "info",
            }
        )
        self.env = env
        self.conf = subprocess.run(
            [os.path.join(TOP, "tools", "tolk-stack"), self.dir],
            env=env,
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        ).stdout.strip()
        self.aof = "unknown"
        with open(os.path.join(self.dir, "redis.conf")) as f:
            for line in f:
                if line.startswith("appendfsync"):
                    self.aof = line.split()[1]
        self.sup = subprocess.Popen(
            ["supervisord", "-n", "-c", self.conf],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.sock = os.path.join(self.dir, "supervisor.sock")
        self.redis = Redis(self.redis_port)
        self.watcher = None

    def start(self):
        deadline = time.time() + 90
        while time.time() < deadline and not os.path.exists(self.sock):
            time.sleep(0.1)
        self.watcher = Watcher(self.sock)
        self.watcher.start()
        self.wait_ready(deadline)
        self.wait_discovery(deadline)

    def wait_discovery(self, deadline):
        """An audio worker has asked APy what English reaches and published
        it (tolk:targets:en): APy starts slower than the workers, whose
        first discovery then fails and is tried again 2 s later."""
        while time.time() < deadline:
            if self.redis.try_cmd("EXISTS", "tolk:targets:en") == 1:
                return
            time.sleep(0.1)
        raise RuntimeError("no audio worker published tolk:targets:en (%s)" % self.dir)

    def readyz(self, port):
        code, body = http_get(port, "/readyz")
        try:
            return code, json.loads(body) if body else {}
        except ValueError:
            return code, {}

    def wait_ready(self, deadline, need_workers=True):
        """Both gateways ready, with every worker live, and APy answering."""
        want = {"control": self.workers, "status": self.workers, "audio": self.workers}
        while time.time() < deadline:
            ok = 0
            for p in self.ports:
                code, j = self.readyz(p)
                if code == 200 and (not need_workers or all(j.get("workers", {}).get(k, 0) >= n for k, n in want.items())):
                    ok += 1
            apy = subprocess.run(
                ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:%d/listPairs" % self.apy_port],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ).returncode == 0
            if ok == len(self.ports) and apy:
                return True
            time.sleep(0.3)
        raise RuntimeError("the system in %s did not become ready" % self.dir)

    def monitor(self):
        """{pid: (kind, counters)} from every status feed (tolk-monitor)."""
        r = subprocess.run(
            [os.path.join(BIN, "tolk-monitor"), "--once", "--json"],
            env=dict(self.env, TOLK_CONFIG=os.path.join(self.dir, "tolk.conf")),
            capture_output=True,
            text=True,
            timeout=30,
        )
        out = {}
        try:
            snap = json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return out
        for p in snap.get("processes", []):
            out[int(p.get("pid", 0))] = (p.get("kind", "?"), p.get("counters", {}))
        return out

    def gateway_id(self, port, pid):
        """The registry id of the gateway on port with pid (gw<port>-<pid>-<random>)."""
        ids = self.redis.try_cmd("SMEMBERS", "tolk:gateways") or []
        for i in ids:
            if i.startswith("gw%d-%d-" % (port, pid)):
                return i
        return None

    def tolk_pids(self):
        """{supervisor name: pid} of every tolk process (not Redis, not APy)."""
        return {n: p for n, p in self.watcher.pids().items() if n not in ("redis", "apy")}

    def supervisorctl(self, *args, timeout=STOPWAIT_MS / 1000.0 + 20):
        """(exit code, output) of supervisorctl on this system's supervisord."""
        try:
            r = subprocess.run(["supervisorctl", "-c", self.conf] + list(args), capture_output=True,
                               text=True, timeout=timeout)
            return r.returncode, (r.stdout + r.stderr).strip()
        except subprocess.TimeoutExpired:
            return None, "supervisorctl %s: no answer within %.0f s" % (" ".join(args), timeout)

    def live_counts(self, kind):
        """[live workers of kind on each gateway] from /readyz (-1: no answer)."""
        out = []
        for p in self.ports:
            code, j = self.readyz(p)
            out.append(j.get("workers", {}).get(kind, -1) if code else -1)
        return out

    def feed_pids(self, kind):
        """pids of kind whose status feed is registered in Redis (the key
        tolk:feed:<kind>-<pid>-<random>)."""
        keys = self.redis.try_cmd("KEYS", "tolk:feed:%s-*" % kind) or []
        out = set()
        for k in keys:
            p = k.split("-")
            if len(p) >= 3 and p[-2].isdigit():
                out.add(int(p[-2]))
        return out

    def stop(self):
        if self.watcher:
            self.watcher.stop_flag = True
        self.redis.close()
        if self.sup.poll() is None:
            self.sup.send_signal(signal.SIGTERM)
            try:
                self.sup.wait(timeout=40)  # the gateways drain first
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.sup.pid, signal.SIGKILL)
                except OSError:
                    pass
                self.sup.wait()
        # anything of ours supervisord left behind (it should leave nothing)
        for pid, name in children(self.sup.pid).items():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


# ------------------------------------------------------------------ the load


class Load:
    """bench/loadgen running in the background with --check-seq."""

    def __init__(self, stack, outdir, name, sessions, listeners, langs, extra, duration=3600):
        self.status_path = os.path.join(outdir, name + "-status.txt")
        self.out_path = os.path.join(outdir, name + "-loadgen.txt")
        self.err_path = os.path.join(outdir, name + "-loadgen.err")
        self.timeline = os.path.join(outdir, name + "-timeline.txt")
        for p in (self.status_path, self.out_path, self.timeline):
            if os.path.exists(p):
                os.unlink(p)
        argv = [
            LOADGEN, "--mode", "tolk",
            "--url", ",".join("127.0.0.1:%d" % p for p in stack.ports),
            "--sessions", str(sessions), "--listeners", str(listeners), "--ramp", "400",
            "--duration", str(duration), "--lang", langs, "--jwt-secret", SECRET,
            "--check-seq", "--status", self.status_path, "--timeline", self.timeline,
        ] + [str(a) for a in extra]
        self.argv = argv
        self.out = open(self.out_path, "w")
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen(argv, stdout=self.out, stderr=self.err)
        self.sessions = sessions
        self.marks = []  # (name, monotonic)

    def status(self):
        """{'phase', 'elapsed_ms', 'marks', 'sessions': [{id, sid, speaker, listeners, slow, urls}]}"""
        st = {"sessions": []}
        try:
            with open(self.status_path) as f:
                for line in f:
                    p = line.split()
                    if not p:
                        continue
                    if p[0] == "session":
                        st["sessions"].append(
                            {
                                "id": int(p[1]), "sid": p[2], "speaker": int(p[4]),
                                "listeners": int(p[6]), "slow": int(p[8]),
                                "urls": [int(x) for x in p[10:]],
                            }
                        )
                    elif len(p) == 2:
                        st[p[0]] = p[1]
        except (OSError, ValueError, IndexError):
            pass
        return st

    def wait_rewrites(self, n, timeout):
        """Wait until loadgen has rewritten its status file n times (it does
        twice a second), so that it shows what loadgen saw until now."""
        def stamp():
            try:
                st = os.stat(self.status_path)
                return (st.st_ino, st.st_mtime_ns)
            except OSError:
                return None
        deadline = time.monotonic() + timeout
        last, seen = stamp(), 0
        while seen < n and time.monotonic() < deadline:
            time.sleep(0.05)
            now = stamp()
            if now != last:
                last, seen = now, seen + 1
        return seen >= n

    def wait_measuring(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("loadgen ended early (see %s)" % self.err_path)
            st = self.status()
            if st.get("phase") == "measure" and len(st["sessions"]) == self.sessions:
                return st
            time.sleep(0.2)
        raise RuntimeError("loadgen did not start measuring")

    def mark(self, name):
        """A mark in loadgen (SIGUSR1): its window starts now."""
        self.marks.append((name, time.monotonic()))
        self.proc.send_signal(signal.SIGUSR1)

    def finish(self, timeout=60):
        """End the measurement (SIGUSR2) and return loadgen's figures."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR2)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        self.err.close()
        figures = {}
        with open(self.out_path) as f:
            for line in f:
                p = line.split(None, 1)
                if len(p) != 2:
                    continue
                v = p[1].strip()
                try:
                    figures[p[0]] = float(v)
                except ValueError:
                    figures[p[0]] = v
        if self.proc.returncode != 0:
            raise RuntimeError("loadgen failed (exit %s, see %s)" % (self.proc.returncode, self.err_path))
        return figures

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


SEQ_FIELDS = ("finals", "duplicates", "out_of_order", "gaps", "missed", "unnumbered",
              "content_duplicates", "run_regressions", "time_regressions", "talk_gaps", "talk_gap_ms")


def seqstat(fig, prefix):
    return {k: int(fig.get("%s_%s" % (prefix, k), 0) or 0) for k in SEQ_FIELDS}


# ------------------------------------------------------------------ checks


class Fault:
    """One injected fault and what was checked about it."""

    def __init__(self, name, process, sig):
        self.name = name
        self.process = process
        self.signal = sig
        self.mark = None  # loadgen mark index (the window of the fault)
        self.marks = []  # every mark this fault set (SIGSTOP: stop and cont)
        self.restart_ms = None
        self.checks = []  # (name, ok, detail)
        self.figures = {}
        self.t0 = time.monotonic()  # when it started: supervisord states are charged to it from then

    def check(self, name, ok, detail=""):
        self.checks.append((name, bool(ok), detail))
        log("  %s %s: %s" % ("ok  " if ok else "FAIL", name, detail))
        return ok

    @property
    def ok(self):
        return all(c[1] for c in self.checks)


def redis_listener_counts(stack, sids):
    out = {}
    for sid in sids:
        v = stack.redis.try_cmd("HGET", "tolk:{%s}:session" % sid, "listenerCount")
        out[sid] = int(v) if v is not None else None
    return out


def expected_counts(load):
    """{sid: live listeners} as loadgen sees them now (slow ones included)."""
    st = load.status()
    return {s["sid"]: s["listeners"] + s["slow"] for s in st["sessions"] if s["sid"] != "-"}


def wait_counts_match(stack, load, timeout):
    """Poll until Redis's listenerCount equals the live listeners of every
    loadgen session; (ms it took or None, last counts, last expected)."""
    t0 = time.monotonic()
    got = want = {}
    while time.monotonic() - t0 < timeout:
        want = expected_counts(load)
        got = redis_listener_counts(stack, want)
        if want and got == want:
            return (time.monotonic() - t0) * 1000, got, want
        time.sleep(0.2)
    return None, got, want


class ReadyzSampler(threading.Thread):
    """Samples every gateway's /readyz every 200 ms: when a stopped worker
    stops being counted live (declared dead), and when it is again."""

    def __init__(self, stack, kind):
        super().__init__(daemon=True)
        self.stack, self.kind = stack, kind
        self.samples = []  # (monotonic, port, live workers of kind)
        self.stop_flag = False

    def run(self):
        while not self.stop_flag:
            for p in self.stack.ports:
                code, j = self.stack.readyz(p)
                if code:
                    self.samples.append((time.monotonic(), p, j.get("workers", {}).get(self.kind, -1)))
            time.sleep(0.2)

    def finish(self):
        self.stop_flag = True
        self.join(5)

    def dead_ms(self, t_stop, n):
        """{port: ms from t_stop until it counted fewer than n (None: never)}"""
        out = {}
        for p in self.stack.ports:
            ts = [t for t, q, k in self.samples if q == p and t >= t_stop and 0 <= k < n]
            out[p] = round((min(ts) - t_stop) * 1000) if ts else None
        return out

    def back_ms(self, t_cont, n):
        """{port: ms from t_cont until it counted n again (None: never)}"""
        out = {}
        for p in self.stack.ports:
            ts = [t for t, q, k in self.samples if q == p and t >= t_cont and k >= n]
            out[p] = round((min(ts) - t_cont) * 1000) if ts else None
        return out


def redis_connected_pids(redis_port):
    """pids with an ESTABLISHED TCP connection to 127.0.0.1:redis_port."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    p = line.split()
                    rport = int(p[2].split(":")[1], 16)
                    if rport == redis_port and p[3] == "01":
                        inodes.add(p[9])
        except OSError:
            continue
    out = set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            for fd in os.listdir("/proc/%s/fd" % d):
                try:
                    link = os.readlink("/proc/%s/fd/%s" % (d, fd))
                except OSError:
                    continue
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    out.add(int(d))
                    break
        except OSError:
            continue
    return out


class Run:
    """The whole test: the stack, the load, the faults, the verdict."""

    def __init__(self, a):
        self.a = a
        self.quick = a.quick
        self.phases = a.only
        self.results = a.results
        self.faults = []
        self.failures = []
        self.stack = None
        self.load = None
        self.figures = {}
        self.slow = {}
        self.rolling = {}
        self.t_start = time.monotonic()
        self.bad_seen = []

    # -------------------------------------------------------------- helpers

    def fail(self, what):
        log("FAIL " + what)
        self.failures.append(what)

    def settle(self, fault, window_s):
        """Let the fault's window run window_s from its mark, then check
        that nothing is FATAL or stuck down."""
        t_mark = self.load.marks[fault.mark][1] if fault.mark is not None else time.monotonic()
        left = t_mark + window_s - time.monotonic()
        if left > 0:
            time.sleep(left)

    def kill(self, fault, name, pre_mark=True):
        """SIGKILL supervisor process name under a mark; the restart time."""
        old = self.stack.watcher.pid(name)
        if not old:
            fault.check("running before", False, "%s is not running" % name)
            return None
        fault.figures["pid_before"] = old
        if pre_mark:
            fault.mark = len(self.load.marks)
            fault.marks.append(fault.mark)
            self.load.mark(fault.name)
        t_kill = time.monotonic()
        os.kill(old, signal.SIGKILL)
        new, t_new = self.stack.watcher.wait_new_pid(name, old, 10)
        if not new:
            fault.check("restarted", False, "no new %s within 10 s" % name)
            return None
        fault.restart_ms = (t_new - t_kill) * 1000
        fault.figures["pid_after"] = new
        fault.check("restarted within %d ms" % RESTART_MS, fault.restart_ms <= RESTART_MS,
                    "%s: pid %d -> %d in %.0f ms (polled every 50 ms)" % (name, old, new, fault.restart_ms))
        return t_kill

    def captions_flowing(self, timeout=15):
        """Every session's speaker connected (a dropped speaker has come back)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.load.status()
            if st["sessions"] and all(s["speaker"] for s in st["sessions"]):
                return True
            time.sleep(0.2)
        return False

    def pick_busiest(self, kind):
        """(supervisor name, pid) of the worker of kind that is busiest now
        (audio chunks or messages it received between two snapshots of the
        status feeds): the one whose death matters."""
        field = "chunks_in" if kind == "audio" else "messages_in"
        mon1 = self.stack.monitor()
        mon2 = self.stack.monitor()
        best, best_n = None, -1
        for name, pid in self.stack.tolk_pids().items():
            if not name.startswith(kind + "-worker"):
                continue
            n = mon2.get(pid, ("?", {}))[1].get(field, 0) - mon1.get(pid, ("?", {}))[1].get(field, 0)
            if n > best_n:
                best, best_n = (name, pid), n
        log("busiest %s worker: %s (%d %s in ~2 s)" % (kind, best[0] if best else None, best_n, field))
        return best

    # -------------------------------------------------------------- faults

    def fault_kill(self, kind, name):
        f = Fault("SIGKILL " + kind, name, "SIGKILL")
        self.faults.append(f)
        log("fault %d: SIGKILL %s" % (len(self.faults), name))
        self.kill(f, name)
        return f

    def fault_gateway(self):
        name = "gateway-1"
        f = Fault("SIGKILL gateway", name, "SIGKILL")
        self.faults.append(f)
        log("fault %d: SIGKILL %s" % (len(self.faults), name))
        old = self.stack.watcher.pid(name)
        gw_id = self.stack.gateway_id(self.stack.ports[1], old) if old else None
        f.figures["gateway_id"] = gw_id
        t_kill = self.kill(f, name)
        if t_kill is None:
            return f
        # the listeners it had are gone; what Redis counts must follow, once
        # loadgen's status shows what it saw (two rewrites after the kill)
        self.load.wait_rewrites(2, 10)
        ms, got, want = wait_counts_match(self.stack, self.load, SLOT_MS / 1000.0 + 2)
        took = (time.monotonic() - t_kill) * 1000 if ms is not None else None
        f.figures["slots_freed_ms"] = took
        f.check("no listener slot stays taken", ms is not None and took <= SLOT_MS + 1000,
                "listenerCount == live listeners %s %s" % (
                    "after %.0f ms" % took if took else "never",
                    "" if ms is not None else "(Redis %s, live %s)" % (got, want)))
        if gw_id:
            left = []
            for sid in want:
                members = self.stack.redis.try_cmd("HKEYS", "tolk:{%s}:members" % sid) or []
                left += [m for m in members if m.startswith(gw_id + "/")]
            conns = self.stack.redis.try_cmd("EXISTS", "tolk:gwconns:%s" % gw_id)
            reg = self.stack.redis.try_cmd("SISMEMBER", "tolk:gateways", gw_id)
            f.check("dead gateway cleaned up", not left and conns == 0 and reg == 0,
                    "members left %d, gwconns %s, still registered %s" % (len(left), conns, reg))
        return f

    def fault_redis(self):
        name = "redis"
        f = Fault("SIGKILL redis-server", name, "SIGKILL")
        self.faults.append(f)
        log("fault %d: SIGKILL redis-server (appendfsync %s)" % (len(self.faults), self.stack.aof))
        f.figures["appendfsync"] = self.stack.aof
        port = self.stack.ports[0]
        # acknowledged state changes just before the kill: a volume the
        # speaker saw acknowledged, and a listener that saw sessionJoined
        spk = Speaker(port)
        lst = join(port, spk.sid)
        value = round(random.uniform(0.1, 0.9), 4)
        spk.set_volume(value)
        m = spk.ws.wait_for(("volumeChanged",), 5)
        acked = m.get("volumeLevel") if m else None
        before = redis_listener_counts(self.stack, list(expected_counts(self.load)))
        t_kill = self.kill(f, name)
        if acked is None:
            f.check("state change acknowledged", False, "no volumeChanged before the kill")
        if t_kill is None:
            return f
        # after the restart: what was acknowledged is there
        deadline = time.monotonic() + 10
        vol = cnt = None
        while time.monotonic() < deadline:
            vol = self.stack.redis.try_cmd("HGET", "tolk:{%s}:session" % spk.sid, "volume")
            cnt = self.stack.redis.try_cmd("HGET", "tolk:{%s}:session" % spk.sid, "listenerCount")
            if vol is not None:
                break
            time.sleep(0.1)
        f.figures["volume_acked"] = acked
        f.figures["volume_after"] = vol
        f.check("acknowledged volume kept", vol is not None and acked is not None and abs(float(vol) - float(acked)) < 1e-4,
                "acked %s, in Redis after the restart %s" % (acked, vol))
        f.check("acknowledged join kept", cnt == "1", "listenerCount of our joined session: %s" % cnt)
        # every process reconnects by itself
        t0 = time.monotonic()
        pending = dict(self.stack.tolk_pids())
        while pending and time.monotonic() - t0 < 10:
            conn = redis_connected_pids(self.stack.redis_port)
            pending = {n: p for n, p in pending.items() if p not in conn}
            if pending:
                time.sleep(0.2)
        f.figures["reconnected_ms"] = (time.monotonic() - t_kill) * 1000 if not pending else None
        f.check("every process reconnected to Redis", not pending,
                "within %.0f ms of the kill" % f.figures["reconnected_ms"] if not pending
                else "no connection from %s" % sorted(pending))
        ready = {}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ready = {p: self.stack.readyz(p) for p in self.stack.ports}
            if all(c == 200 and j.get("redis") for c, j in ready.values()):
                break
            time.sleep(0.2)
        f.check("gateways ready again", all(c == 200 for c, j in ready.values()),
                ", ".join("%d: %d" % (p, c) for p, (c, j) in ready.items()))
        # feeds re-registered: each process wrote to Redis after the restart.
        # A TTL is the behaviour here: the registrations restored with Redis
        # (5 s) must have expired first, so every key left is a fresh one
        time.sleep(max(0.0, t_kill + 6.5 - time.monotonic()))
        feeds = self.stack.redis.try_cmd("KEYS", "tolk:feed:*") or []
        fed = {int(k.split("-")[-2]) for k in feeds if k.count("-") >= 2 and k.split("-")[-2].isdigit()}
        missing = sorted(n for n, p in self.stack.tolk_pids().items() if p not in fed)
        f.check("every status feed registered again", not missing, "missing: %s" % missing if missing else
                "%d processes" % len(self.stack.tolk_pids()))
        # a new session can be created and joined
        try:
            spk2 = Speaker(port)
            lst2 = join(self.stack.ports[1], spk2.sid, "es")
            f.check("new session created and joined", True, spk2.sid)
            lst2.close()
            spk2.close()
        except (RuntimeError, OSError, WsClosed) as e:
            f.check("new session created and joined", False, str(e))
        ms, got, want = wait_counts_match(self.stack, self.load, 5)
        f.check("listener counts intact", ms is not None,
                "Redis %s, live %s (before the kill %s)" % (got, want, before) if ms is None else
                "%d sessions match" % len(want))
        lst.close()
        spk.close()
        return f

    def check_declared_dead(self, f, sampler, kind, t_stop, t_cont):
        """Every gateway stopped counting the stopped worker within
        REROUTE_MS, and counted it again soon after SIGCONT."""
        sampler.finish()
        n = self.stack.workers
        dead = sampler.dead_ms(t_stop, n)
        back = sampler.back_ms(t_cont, n)
        f.figures["declared_dead_ms"] = dead
        f.figures["live_again_ms"] = back
        f.check("declared dead within %d ms (+%d ms sampling)" % (REROUTE_MS, PROBE_SLACK_MS),
                all(v is not None and v <= REROUTE_MS + PROBE_SLACK_MS for v in dead.values()),
                "per gateway (/readyz every 200 ms): %s" % dead)
        f.check("live again after SIGCONT", all(v is not None and v <= 3000 for v in back.values()),
                "per gateway: %s ms" % back)

    def fault_stop_control(self, stop_s):
        name, pid = self.pick_busiest("control")
        f = Fault("SIGSTOP control worker", name, "SIGSTOP")
        self.faults.append(f)
        log("fault %d: SIGSTOP %s for %d s" % (len(self.faults), name, stop_s))
        port = self.stack.ports[0]
        n = 10
        spk = [Speaker(port) for _ in range(n)]
        for i, s in enumerate(spk):  # working before
            s.set_volume(0.1)
        pump_all(spk, 1.0)
        if not f.check("control answers before", all(s.acked == 0.1 for s in spk), ""):
            for s in spk:
                s.close()
            return f
        sampler = ReadyzSampler(self.stack, "control")
        sampler.start()
        f.mark = len(self.load.marks)
        f.marks.append(f.mark)
        self.load.mark(f.name)
        t_stop = time.monotonic()
        os.kill(pid, signal.SIGSTOP)
        sent = {i: [] for i in range(n)}  # speaker index -> [(value, s after the stop)]
        for i, s in enumerate(spk):
            v = round(0.2 + 0.001 * i, 4)
            s.set_volume(v)
            sent[i].append((v, time.monotonic() - t_stop))
        pump_all(spk, max(0.0, t_stop + 1.0 - time.monotonic()))
        owned = [i for i, s in enumerate(spk) if s.acked != sent[i][0][0]]
        f.figures["sessions_on_stopped_worker"] = len(owned)
        answered = {}  # speaker index -> s from the stop to its first answer
        attempt = 0
        while len(answered) < len(owned) and time.monotonic() - t_stop < REROUTE_MS / 1000.0 + 8:
            attempt += 1
            for i in owned:
                if i not in answered:
                    v = round(0.3 + 0.01 * attempt + 0.0001 * i, 4)
                    spk[i].set_volume(v)
                    sent[i].append((v, time.monotonic() - t_stop))
            pump_all(spk, 0.15)  # the control rate allows 10 a second
            for i in owned:
                if i not in answered and spk[i].acks and spk[i].acks[-1][1] != 0.1:
                    answered[i] = spk[i].acks[-1][0] - t_stop
        # what the stopped worker got: everything sent to its sessions before
        # their first answer, less the answered value itself
        stale = {i: [] for i in range(n)}
        for i in owned:
            acked = [v for t, v in spk[i].acks if t > t_stop]
            stale[i] = [(v, ts) for v, ts in sent[i] if v not in acked]
        worst = max(answered.values()) * 1000 if answered else None
        f.figures["answered_again_ms"] = worst
        f.check("control answered again within %d ms (+%d ms probe period)" % (REROUTE_MS, PROBE_SLACK_MS),
                owned and len(answered) == len(owned) and worst <= REROUTE_MS + PROBE_SLACK_MS,
                "%d of %d sessions were on it; %d answered again, the last after %s ms" % (
                    len(owned), n, len(answered), "%.0f" % worst if worst is not None else "never"))
        last_good = {i: s.acked for i, s in enumerate(spk)}
        time.sleep(max(0.0, t_stop + stop_s - time.monotonic()))
        cont_mark = len(self.load.marks)
        f.marks.append(cont_mark)
        self.load.mark("SIGCONT control worker")
        os.kill(pid, signal.SIGCONT)
        t_cont = time.monotonic()
        f.figures["stopped_ms"] = (t_cont - t_stop) * 1000
        # 3 s: does it act on what it got while stopped?
        late = []
        before = [len(s.acks) for s in spk]
        pump_all(spk, 3.0)
        for i, s in enumerate(spk):
            for t, v in s.acks[before[i]:]:
                for sv, ts in stale[i]:
                    if sv == v:
                        late.append({"session": s.sid, "value": v, "sent_s_after_stop": round(ts, 3),
                                     "applied_s_after_cont": round(t - t_cont, 3)})
        self.check_declared_dead(f, sampler, "control", t_stop, t_cont)
        vols = {i: self.stack.redis.try_cmd("HGET", "tolk:{%s}:session" % s.sid, "volume") for i, s in enumerate(spk)}
        wrong = {spk[i].sid: {"redis": vols[i], "last_acknowledged": last_good[i]} for i in range(n)
                 if vols[i] is None or last_good[i] is None or abs(float(vols[i]) - float(last_good[i])) > 1e-4}
        f.figures["stale_sent"] = sum(len(stale[i]) for i in owned)
        f.figures["stale_applied"] = len(late)
        f.figures["stale_applied_first"] = late[:5]
        f.figures["volume_overwritten"] = wrong
        f.check("no stale control work done after SIGCONT", not late and not wrong,
                "%d of the %d setVolume sent to it while stopped were applied after SIGCONT%s; "
                "sessions whose volume is no longer the last acknowledged: %d" % (
                    len(late), f.figures["stale_sent"],
                    " (first: %s)" % late[0] if late else "", len(wrong)))
        f.check("still the same process", self.stack.watcher.pid(name) == pid,
                "supervisord did not restart it")
        mon = self.stack.monitor()
        kind, c = mon.get(pid, ("?", {}))
        sd = c.get("stale_dropped")
        f.figures["stale_dropped"] = sd
        f.check("stale messages dropped", sd is not None and sd >= 1,
                "stale_dropped %s (it had %d unanswered setVolume of ours)" % (sd, f.figures["stale_sent"]))
        for s in spk:  # and it works again
            s.set_volume(0.9)
        pump_all(spk, 1.5)
        f.check("control answers after", all(s.acked == 0.9 for s in spk), "")
        for s in spk:
            s.close()
        return f

    def fault_stop_audio(self, stop_s):
        name, pid = self.pick_busiest("audio")
        f = Fault("SIGSTOP audio worker", name, "SIGSTOP")
        self.faults.append(f)
        log("fault %d: SIGSTOP %s for %d s" % (len(self.faults), name, stop_s))
        sampler = ReadyzSampler(self.stack, "audio")
        sampler.start()
        f.mark = len(self.load.marks)
        f.marks.append(f.mark)
        self.load.mark(f.name)
        t_stop = time.monotonic()
        os.kill(pid, signal.SIGSTOP)
        time.sleep(max(0.0, t_stop + stop_s - time.monotonic()))
        f.marks.append(len(self.load.marks))
        self.load.mark("SIGCONT audio worker")
        os.kill(pid, signal.SIGCONT)
        t_cont = time.monotonic()
        f.figures["stopped_ms"] = (t_cont - t_stop) * 1000
        # until every gateway counts it again (the check says how soon)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and None in sampler.back_ms(t_cont, self.stack.workers).values():
            time.sleep(0.2)
        self.check_declared_dead(f, sampler, "audio", t_stop, t_cont)
        f.check("still the same process", self.stack.watcher.pid(name) == pid, "")
        # its feed reports once a second: wait for the report with the drop
        deadline = time.monotonic() + 10
        while True:
            mon = self.stack.monitor()
            kind, c = mon.get(pid, ("?", {}))
            sd = c.get("stale_dropped")
            if (sd is not None and sd >= 1) or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        f.figures["stale_dropped"] = sd
        f.check("stale audio dropped", sd is not None and sd >= 1, "stale_dropped %s" % sd)
        return f

    # -------------------------------------------------------------- phases

    def main_phase(self):
        q = self.quick
        listeners = 25 if q else 100
        window = 7 if q else 10
        stop_s = 10
        self.load = Load(self.stack, self.results, "faults", 4, listeners, "en,es,en",
                         ["--audio-rate", 10, "--chunk-bytes", 3200, "--control-rate", 1,
                          "--speaker-refresh", "--outage-ms", 1000])
        log("load: 4 sessions x %d listeners (en, es), captions every %d ms" % (listeners, CAPTION_MS))
        self.load.wait_measuring(120)
        time.sleep(3 if q else 6)  # a measuring window: a baseline before the first fault
        plan = [
            lambda: self.fault_kill("control worker", "control-worker:control-worker-0"),
            lambda: self.fault_kill("status worker", "status-worker:status-worker-0"),
            lambda: self.fault_kill("audio worker", self.pick_busiest("audio")[0]),
            lambda: self.fault_kill("sweeper", "sweeper"),
            self.fault_gateway,
            self.fault_redis,
            lambda: self.fault_stop_control(stop_s),
            lambda: self.fault_stop_audio(stop_s),
        ]
        for step in plan:
            if not self.captions_flowing():
                self.fail("a speaker did not come back before fault %d" % (len(self.faults) + 1))
            f = step()
            self.settle(f, window if f.signal == "SIGKILL" else 0)
            if f.signal == "SIGSTOP":
                # the SIGCONT window: let it run too
                t = self.load.marks[f.marks[-1]][1]
                time.sleep(max(0.0, t + window - time.monotonic()))
        self.figures = self.load.finish()
        self.judge_main()

    def judge_main(self):
        fig = self.figures
        nmarks = int(fig.get("marks", 0))
        names = [m[0] for m in self.load.marks]
        if nmarks != len(names):
            self.fail("loadgen saw %d marks, %d were set" % (nmarks, len(names)))
        pre = seqstat(fig, "premark_seq")
        if pre["duplicates"] or pre["out_of_order"] or pre["gaps"] or pre["unnumbered"]:
            self.fail("anomalies before any fault: %s" % pre)
        for f in self.faults:
            for k, idx in enumerate(f.marks):
                p = "mark%d" % idx
                w = {
                    "listeners": int(fig.get(p + "_listeners", 0)),
                    "never_resumed": int(fig.get(p + "_never_resumed", 0)),
                    "interrupted": int(fig.get(p + "_interrupted", 0)),
                    "resume_ms": fig.get(p + "_resume_ms_max", 0.0),
                    "silence_ms": fig.get(p + "_silence_ms_max", 0.0),
                    "window_ms": fig.get(p + "_window_ms", 0.0),
                    "seq": seqstat(fig, p + "_seq"),
                }
                label = names[idx] if idx < len(names) else p
                f.figures.setdefault("windows", []).append(dict(w, name=label))
                bound = RESUME_MS
                if f.signal == "SIGSTOP" and k == 0 and "audio" in f.name:
                    bound = STOP_RESUME_MS
                    f.check("[%s] the stopped worker was carrying captions" % names[idx], w["interrupted"] > 0,
                            "%d listeners saw their captions stop" % w["interrupted"])
                s = w["seq"]
                f.check("[%s] survivors' captions resume within %d ms" % (label, bound),
                        w["listeners"] > 0 and w["never_resumed"] == 0 and w["resume_ms"] <= bound,
                        "%d live listeners, worst %.0f ms, longest silence %.0f ms, %d interrupted, %d never resumed" % (
                            w["listeners"], w["resume_ms"], w["silence_ms"], w["interrupted"], w["never_resumed"]))
                f.check("[%s] no caption twice or out of order" % label,
                        s["duplicates"] == 0 and s["out_of_order"] == 0 and s["content_duplicates"] == 0,
                        "duplicates %d, out of order %d, same segment twice %d" % (
                            s["duplicates"], s["out_of_order"], s["content_duplicates"]))
                f.check("[%s] every gap visible in seq" % label, s["unnumbered"] == 0,
                        "visible gaps %d (%d seqs missed), finals never numbered %d" % (
                            s["gaps"], s["missed"], s["unnumbered"]))
                f.check("[%s] no stale recognition" % label, s["run_regressions"] == 0 and s["time_regressions"] == 0,
                        "finals of an older recognition run %d, finals going back in time %d" % (
                            s["run_regressions"], s["time_regressions"]))
            if f.mark is not None:
                w = f.figures["windows"][0]
                f.resume_ms = max(x["resume_ms"] for x in f.figures["windows"])
                agg = {k: sum(x["seq"][k] for x in f.figures["windows"]) for k in SEQ_FIELDS}
                f.seq = agg
        # the survivors keep their connections: only the killed gateway's drop
        killed_url = 1
        for u in range(2):
            dropped = int(fig.get("url%d_dropped" % u, 0))
            codes = fig.get("url%d_dropped_close_codes" % u, "")
            if u != killed_url and dropped:
                self.fail("%d listeners on the surviving gateway (url%d) were closed: %s" % (dropped, u, codes))
        # and every window closed with exactly the listeners it should have:
        # all of them before the gateway died, those of gateway-0 after
        both = int(fig.get("url0_listeners", 0)) + int(fig.get("url1_listeners", 0))
        after = int(fig.get("url0_listeners", 0))
        gone = False
        for f in self.faults:
            if f.name == "SIGKILL gateway":
                gone = True
            for w in f.figures.get("windows", []):
                want = after if gone else both
                if w["listeners"] != want:
                    f.check("[%s] listeners kept" % w["name"], False,
                            "%d live at the end of the window, %d expected" % (w["listeners"], want))
        self.url_figures = {
            u: {
                "listeners": int(fig.get("url%d_listeners" % u, 0)),
                "open_at_end": int(fig.get("url%d_open_end" % u, 0)),
                "dropped": int(fig.get("url%d_dropped" % u, 0)),
                "dropped_close_codes": fig.get("url%d_dropped_close_codes" % u, ""),
                "silence_ms_max": fig.get("url%d_silence_ms_max" % u, 0.0),
            }
            for u in range(2)
        }
        if fig.get("connect_failures", 0):
            self.fail("loadgen: %d connections failed (%s)" % (fig["connect_failures"], fig.get("connect_failure_reasons")))

    def queue_full_closes(self, since_ms):
        """Connections the gateways decided to close at their queue bound
        since since_ms (Unix ms): the correlation ids of their log lines,
        and how many lines (a connection can hit the bound again)."""
        ids, lines = set(), 0
        logs = os.path.join(self.stack.dir, "logs")
        for name in os.listdir(logs):
            if not name.startswith("gateway-"):
                continue
            with open(os.path.join(logs, name), errors="replace") as f:
                for line in f:
                    if "send queue full" not in line:
                        continue
                    try:
                        j = json.loads(line)
                    except ValueError:
                        continue
                    if j.get("timestamp", 0) >= since_ms:
                        ids.add(j.get("correlationId"))
                        lines += 1
        return ids, lines

    def slow_phase(self):
        """One session x 100, 10 % stop reading, captions at 80/s (1 s of
        audio per chunk at 20 chunks/s), all en: queues fill in seconds
        (512 messages, plus what the kernel buffers on both sides: about
        15 s here). Full form: the same without slow listeners first, for
        the others' latency."""
        q = self.quick
        dur = 30
        runs = [10] if q else [0, 10]
        self.slow = {"runs": {}}
        for pct in runs:
            name = "slow%d" % pct
            log("slow listeners: 1 session x 100, %d %% slow, 80 finals/s, %d s" % (pct, dur))
            since = int(time.time() * 1000)
            load = Load(self.stack, self.results, name, 1, 100, "en",
                        ["--audio-rate", 20, "--chunk-bytes", 32000, "--slow", pct, "--duration", dur,
                         "--outage-ms", 1000], duration=dur)
            self.load_slow = load
            st = load.wait_measuring(60)
            t0 = time.monotonic()
            r = {"listeners": 100}
            if pct:
                nslow = sum(x["slow"] for x in st["sessions"])
                # the gateways reach the bound of every slow listener ...
                ids, lines = set(), 0
                while time.monotonic() - t0 < dur - 6 and len(ids) < nslow:
                    time.sleep(0.5)
                    ids, lines = self.queue_full_closes(since)
                r["queue_full_s"] = round(time.monotonic() - t0, 1) if len(ids) >= nslow else None
                # ... then the connections must go, and their slots with them
                t1 = time.monotonic()
                got = want = {}
                ok = False
                while time.monotonic() - t0 < dur - 1:
                    st = load.status()
                    want = {x["sid"]: x["listeners"] for x in st["sessions"]}  # the others only
                    got = redis_listener_counts(self.stack, want)
                    if got == want:
                        ok = True
                        break
                    time.sleep(0.25)
                r["slots_freed_ms"] = round((time.monotonic() - t1) * 1000) if ok else None
                r["slots"] = {"redis": got, "others": want}
                mon = self.stack.monitor()
                r["gateway_connections"] = sum(c.get("connections", 0) for k, c in mon.values() if k == "gateway")
                r["gateway_slow_closed"] = sum(c.get("slow_closed", 0) for k, c in mon.values() if k == "gateway")
                ids, lines = self.queue_full_closes(since)
                r["queue_full_connections"] = len(ids)
                r["queue_full_lines"] = lines
            load.proc.wait(timeout=dur + 30)
            fig = load.finish()
            r.update({
                "slow": int(fig.get("slow_listeners", 0)),
                "slow_closed_seen_by_client": int(fig.get("slow_closed", 0)),
                "slow_close_codes_seen_by_client": fig.get("slow_close_codes", ""),
                "others_dropped": int(fig.get("dropped", 0)),
                "deliveries": int(fig.get("deliveries", 0)),
                "caption_p50_ms": fig.get("caption_p50_us", 0) / 1000.0,
                "caption_p99_ms": fig.get("caption_p99_us", 0) / 1000.0,
                "caption_max_ms": fig.get("caption_max_us", 0) / 1000.0,
                "silence_ms_max": fig.get("silence_ms_max", 0.0),
                "seq": seqstat(fig, "seq"),
            })
            self.slow["runs"][pct] = r
        r = self.slow["runs"][10]
        f = Fault("slow listener", "gateway", "-")
        f.resume_ms = None
        f.seq = r["seq"]
        self.faults.append(f)
        f.check("slow listeners reach the queue bound", r["slow"] > 0 and r["queue_full_connections"] >= r["slow"],
                "%d slow; the gateways closed %d at their bound after %s s (%d 'send queue full' lines)" % (
                    r["slow"], r["queue_full_connections"], r["queue_full_s"], r["queue_full_lines"]))
        f.check("slow listeners' connections closed and their slots freed", r["slots_freed_ms"] is not None,
                "listenerCount == the others %s; Redis %s, others %s; gateways hold %d connections "
                "(100 listeners + 1 speaker - %d slow = %d)" % (
                    "after %d ms" % r["slots_freed_ms"] if r["slots_freed_ms"] is not None else "never",
                    r["slots"]["redis"], r["slots"]["others"], r["gateway_connections"], r["slow"],
                    101 - r["slow"]))
        s = r["seq"]
        f.check("the others lose nothing", r["others_dropped"] == 0 and s["gaps"] == 0 and s["duplicates"] == 0
                and s["out_of_order"] == 0 and s["unnumbered"] == 0,
                "others closed %d, gaps %d, duplicates %d, out of order %d, unnumbered %d" % (
                    r["others_dropped"], s["gaps"], s["duplicates"], s["out_of_order"], s["unnumbered"]))
        f.check("the others' captions keep flowing", r["silence_ms_max"] < 1000,
                "longest silence %.0f ms" % r["silence_ms_max"])
        if 0 in self.slow["runs"]:
            b = self.slow["runs"][0]
            bound = max(3 * b["caption_p99_ms"], b["caption_p99_ms"] + 50)
            f.check("the others' latency unchanged", r["caption_p99_ms"] <= bound,
                    "p99 %.1f ms with slow listeners, %.1f ms without (bound %.0f)" % (
                        r["caption_p99_ms"], b["caption_p99_ms"], bound))
        f.figures = self.slow

    # -------------------------------------------------------------- rolling restart

    def restart_one(self, name, kind, tails):
        """supervisorctl restart name (SIGTERM; supervisord waits for the exit,
        up to stopwaitsecs, then starts a new one) under a mark set
        ROLL_LEAD_S before, and wait until the replacement is live: a new
        pid RUNNING and its status feed registered in Redis (a worker
        registers it after its first READY/HEARTBEAT to every gateway); for
        a routed kind also, on every gateway, /readyz counting the whole
        pool again once that gateway's log has named the new worker
        (<kind>-<pid>-..., "is live") or the old one (dead, or gone): then
        the old one is no longer counted, so the new one is. (A new worker
        that takes a forgotten worker's slot in the gateway's table is not
        logged as live: gateway/bridge.c copies the last entry into the
        freed slot and leaves the copy behind.) tails: LogTails of the
        gateways' logs and of supervisord's."""
        short = name.split(":")[-1]
        f = Fault("restart " + short, name, "SIGTERM")
        self.faults.append(f)
        log("restart %d: supervisorctl restart %s" % (len(self.load.marks) + 1, name))
        n = self.stack.workers
        routed = kind != "sweeper"
        old = self.stack.watcher.pid(name)
        if not f.check("running before", old, "%s pid %s" % (name, old)):
            return f
        f.figures["pid_before"] = old
        if routed:
            before = self.stack.live_counts(kind)
            f.check("whole pool live before", all(c == n for c in before),
                    "%s workers live per gateway: %s (want %d)" % (kind, before, n))
        for t in tails.values():
            t.skip()
        f.mark = len(self.load.marks)
        f.marks.append(f.mark)
        self.load.mark(f.name)
        time.sleep(ROLL_LEAD_S)
        pos = self.stack.watcher.mark()
        t_term = time.monotonic()
        rc, out = self.stack.supervisorctl("restart", name)
        f.figures["supervisorctl"] = out
        f.check("supervisorctl restart", rc == 0 and "started" in out,
                "exit %s: %s" % (rc, out.replace("\n", "; ")))
        new, t_new = self.stack.watcher.wait_new_pid(name, old, 5, since=pos)
        # when the old process ended (supervisord polled every 50 ms) and how
        t_exit = None
        for t, p, st in self.stack.watcher.changes_after(pos, name):
            if p != old or st not in ("RUNNING", "STOPPING"):
                t_exit = t
                break
        how = [ln.split("stopped: ", 1)[1] for ln in tails["supervisord"].lines()
               if "stopped: %s " % short in ln]
        stop_ms = (t_exit - t_term) * 1000 if t_exit is not None else None
        f.figures.update({"pid_after": new, "stop_ms": round(stop_ms) if stop_ms is not None else None,
                          "stopped_how": how[0] if how else None})
        f.check("stopped by its SIGTERM, before supervisord's SIGKILL (%d ms)" % STOPWAIT_MS,
                stop_ms is not None and stop_ms < STOPWAIT_MS and how and "SIGKILL" not in how[0],
                "pid %d ended after %s ms: %s" % (old, "%.0f" % stop_ms if stop_ms is not None else "?",
                                                  how[0] if how else "no 'stopped:' line"))
        if not f.check("replaced", new, "new pid %s" % new):
            return f
        # the replacement is live: feed, gateways' logs, /readyz
        new_id, old_id = "%s-%d-" % (kind, new), "%s-%d-" % (kind, old)
        named = {}  # gateway -> what its log said first: new live, or old gone
        feed = False
        counts = []
        deadline = t_new + ROLL_LIVE_MS / 1000.0
        t_live = None
        while True:
            for g, t in tails.items():
                if g == "supervisord":
                    continue
                for ln in t.lines():
                    if g not in named and new_id in ln and " live" in ln:
                        named[g] = "new live"
                    elif g not in named and old_id in ln:
                        named[g] = "old gone"
            feed = feed or new in self.stack.feed_pids(kind)
            counts = self.stack.live_counts(kind) if routed else []
            if feed and (not routed or (len(named) == len(self.stack.ports) and all(c == n for c in counts))):
                t_live = time.monotonic()
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        f.figures["gateways_said"] = named
        f.restart_ms = (t_live - t_term) * 1000 if t_live else None
        f.figures["live_ms"] = round(f.restart_ms) if t_live else None
        f.figures["start_to_live_ms"] = round((t_live - t_new) * 1000) if t_live else None
        f.check("replacement live within %d ms of its start" % ROLL_LIVE_MS, t_live,
                "pid %d: status feed %s; %s%s" % (
                    new, "registered" if feed else "not registered",
                    "" if not routed else "gateways' logs %s, /readyz %s workers %s (want %d); " % (
                        named, kind, counts, n),
                    "SIGTERM to live %.0f ms (stop %s ms, start to live %.0f ms)" % (
                        f.restart_ms, f.figures["stop_ms"], f.figures["start_to_live_ms"]) if t_live else "not live"))
        return f

    def rolling_phase(self):
        """Under load (4 sessions, their speakers streaming and sending
        setVolume ROLL_CONTROL_RATE times a second, listeners checking
        every final's seq), restart every worker one at a time the way an
        operator does (supervisorctl restart: SIGTERM, wait, start): every
        control, status and audio worker, then the sweeper, each once its
        predecessor's replacement is live. Nothing may be lost: no final
        missed, repeated or out of order, no control without its answer."""
        q = self.quick
        listeners = 25 if q else 100
        settle = 1.5 if q else 3.0
        n = self.stack.workers
        order = [("%s-worker:%s-worker-%d" % (k, k, i), k) for k in ("control", "status", "audio") for i in range(n)]
        order.append(("sweeper", "sweeper"))
        self.load = Load(self.stack, self.results, "rolling", 4, listeners, "en,es,en",
                         ["--audio-rate", 10, "--chunk-bytes", 3200, "--control-rate", ROLL_CONTROL_RATE,
                          "--speaker-refresh", "--outage-ms", 1000, "--talk-slack-ms", ROLL_TALK_SLACK_MS,
                          "--drain-s", ROLL_DRAIN_S])
        log("rolling restart: 4 sessions x %d listeners (en, es), setVolume %d/s per speaker, %d processes" % (
            listeners, ROLL_CONTROL_RATE, len(order)))
        self.load.wait_measuring(120)
        time.sleep(3)  # a baseline: nothing may be lost before the first restart either
        logs = os.path.join(self.stack.dir, "logs")
        tails = {"gateway-%d" % i: LogTail(os.path.join(logs, "gateway-%d.log" % i)) for i in range(len(self.stack.ports))}
        tails["supervisord"] = LogTail(os.path.join(logs, "supervisord.log"))
        first = len(self.faults)
        for name, kind in order:
            if not self.captions_flowing():
                self.fail("rolling: a speaker is not connected before restarting %s" % name)
            f = self.restart_one(name, kind, tails)
            t = self.load.marks[f.mark][1] if f.mark is not None else time.monotonic()
            time.sleep(max(0.0, t + ROLL_LEAD_S + (f.restart_ms or 0) / 1000.0 + settle - time.monotonic()))
        restarts = self.faults[first:]
        time.sleep(1.0)  # loadgen's status file catches up
        ms, got, want = wait_counts_match(self.stack, self.load, 5)
        fig = self.load.finish()
        self.judge_rolling(restarts, fig, ms, got, want)

    def judge_rolling(self, restarts, fig, ms, got, want):
        """Per restart's window and for the whole load: finals and controls."""
        names = [m[0] for m in self.load.marks]
        if int(fig.get("marks", 0)) != len(names):
            self.fail("rolling: loadgen saw %d marks, %d were set" % (int(fig.get("marks", 0)), len(names)))

        def ctl(prefix):
            return {k: int(fig.get("%s_%s" % (prefix, k), 0) or 0)
                    for k in ("sent", "answered", "unanswered", "cut", "repeated", "errors")}

        def ctl_ok(c):
            return c["answered"] == c["sent"] and not (c["unanswered"] or c["cut"] or c["repeated"] or c["errors"])

        def ctl_detail(c):
            return "sent %d, answered %d, unanswered %d, cut %d, answered twice %d, error answers %d" % (
                c["sent"], c["answered"], c["unanswered"], c["cut"], c["repeated"], c["errors"])

        total_listeners = int(fig.get("url0_listeners", 0)) + int(fig.get("url1_listeners", 0))
        rows = []
        for f in restarts:
            if f.mark is None:
                continue
            p = "mark%d" % f.mark
            s = seqstat(fig, p + "_seq")
            c = ctl(p + "_control")
            w = {
                "listeners": int(fig.get(p + "_listeners", 0)),
                "never_resumed": int(fig.get(p + "_never_resumed", 0)),
                "resume_ms": fig.get(p + "_resume_ms_max", 0.0),
                "silence_ms": fig.get(p + "_silence_ms_max", 0.0),
                "window_ms": fig.get(p + "_window_ms", 0.0),
                "seq": s,
                "control": c,
            }
            f.figures.setdefault("windows", []).append(dict(w, name=names[f.mark]))
            f.seq = s
            f.resume_ms = w["resume_ms"]
            f.check("[%s] no final lost (no gap, none unnumbered)" % f.name, s["gaps"] == 0 and s["unnumbered"] == 0,
                    "%d finals checked; visible gaps %d (%d seqs missed), never numbered %d" % (
                        s["finals"], s["gaps"], s["missed"], s["unnumbered"]))
            f.check("[%s] no final repeated or out of order" % f.name,
                    s["duplicates"] == 0 and s["content_duplicates"] == 0 and s["out_of_order"] == 0,
                    "duplicates %d, same segment twice %d, out of order %d" % (
                        s["duplicates"], s["content_duplicates"], s["out_of_order"]))
            f.check("[%s] no stale recognition" % f.name, s["run_regressions"] == 0 and s["time_regressions"] == 0,
                    "older recognition run %d, going back in time %d" % (s["run_regressions"], s["time_regressions"]))
            # where speech went uncaptioned (by the talk clock, which two
            # workers agree on to ~1 ms): a figure per window; the exact
            # count is the whole run's (judged below)
            gmax = int(fig.get(p + "_seq_talk_gap_max_ms", 0) or 0)
            f.figures["talk_not_captioned"] = "%d stretches over %d ms between two finals (per listener copy), " \
                "%d ms in all, longest %d ms" % (s["talk_gaps"], ROLL_TALK_SLACK_MS, s["talk_gap_ms"], gmax)
            log("  [%s] talk not captioned: %s" % (f.name, f.figures["talk_not_captioned"]))
            f.check("[%s] every listener kept, captions within %d ms" % (f.name, RESUME_MS),
                    w["listeners"] == total_listeners and w["never_resumed"] == 0 and w["resume_ms"] <= RESUME_MS,
                    "%d of %d listeners live, worst resume %.0f ms, longest silence %.0f ms, %d never resumed" % (
                        w["listeners"], total_listeners, w["resume_ms"], w["silence_ms"], w["never_resumed"]))
            f.check("[%s] every control answered once" % f.name, ctl_ok(c), ctl_detail(c))
            rows.append({
                "process": f.process, "pid_before": f.figures.get("pid_before"), "pid_after": f.figures.get("pid_after"),
                "stopped_how": f.figures.get("stopped_how"), "stop_ms": f.figures.get("stop_ms"),
                "live_ms": f.figures.get("live_ms"), "start_to_live_ms": f.figures.get("start_to_live_ms"),
                "finals": s["finals"], "gaps": s["gaps"], "seqs_missed": s["missed"], "unnumbered": s["unnumbered"],
                "repeated": s["duplicates"] + s["content_duplicates"], "out_of_order": s["out_of_order"],
                "talk_gaps": s["talk_gaps"], "talk_gap_ms": s["talk_gap_ms"], "talk_gap_max_ms": gmax,
                "resume_ms": w["resume_ms"], "silence_ms": w["silence_ms"], "control": c, "pass": f.ok,
            })
        tot = seqstat(fig, "seq")
        pre = seqstat(fig, "premark_seq")
        ctot, cpre = ctl("control"), ctl("premark_control")
        # the summary row: the baseline, the accounting, what a user keeps
        f = Fault("rolling restart (all)", "every worker", "-")
        f.resume_ms = None
        f.seq = tot
        self.faults.append(f)
        f.check("baseline clean (before the first restart)",
                not (pre["gaps"] or pre["unnumbered"] or pre["duplicates"] or pre["content_duplicates"]
                     or pre["out_of_order"] or pre["talk_gaps"]) and ctl_ok(cpre) and cpre["sent"] > 0
                and pre["finals"] > 0,
                "%d finals, gaps %d, duplicates %d, talk not captioned %d (longest stretch %d ms); controls: %s" % (
                    pre["finals"], pre["gaps"], pre["duplicates"], pre["talk_gaps"],
                    int(fig.get("premark_seq_talk_gap_max_ms", 0) or 0), ctl_detail(cpre)))
        wins = [ctl("mark%d_control" % i) for i in range(len(names))] + [cpre]
        f.check("control accounting exact", ctot["sent"] == ctot["answered"] + ctot["unanswered"] + ctot["cut"]
                and all(c["sent"] == c["answered"] + c["unanswered"] + c["cut"] for c in wins)
                and sum(c["sent"] for c in wins) == ctot["sent"],
                "sent %d = answered %d + unanswered %d + cut %d, in every window too" % (
                    ctot["sent"], ctot["answered"], ctot["unanswered"], ctot["cut"]))
        f.check("no listener closed", int(fig.get("dropped", 0)) == 0,
                "%d connections closed (%s)" % (int(fig.get("dropped", 0)), fig.get("dropped_close_codes", "")))
        f.check("listener counts in Redis intact", ms is not None,
                "%d sessions match" % len(want) if ms is not None else "Redis %s, live %s" % (got, want))
        f.check("every final delivered once, in order",
                tot["gaps"] == 0 and tot["unnumbered"] == 0 and tot["duplicates"] == 0
                and tot["content_duplicates"] == 0 and tot["out_of_order"] == 0,
                "%d finals checked; gaps %d (%d seqs), never numbered %d, duplicates %d, same segment twice %d, "
                "out of order %d" % (tot["finals"], tot["gaps"], tot["missed"], tot["unnumbered"], tot["duplicates"],
                                     tot["content_duplicates"], tot["out_of_order"]))
        talk = {k: int(fig.get("talk_" + k, 0) or 0)
                for k in ("listeners", "sent_ms", "uncaptioned_ms", "uncaptioned_max_ms", "excess_ms")}
        f.check("no speech lost: every ms of audio sent is in a final", talk["listeners"] > 0 and talk["sent_ms"] > 0
                and talk["uncaptioned_ms"] == 0 and talk["excess_ms"] == 0,
                "%d English listeners, %d ms of audio sent to each session summed over them; in no final: %d ms "
                "(the worst listener %d ms); covered twice: %d ms; where (talk clock, per restart): %d stretches, "
                "%d ms" % (talk["listeners"], talk["sent_ms"], talk["uncaptioned_ms"], talk["uncaptioned_max_ms"],
                           talk["excess_ms"], tot["talk_gaps"], tot["talk_gap_ms"]))
        f.check("every control answered once", ctl_ok(ctot), ctl_detail(ctot))
        if fig.get("connect_failures", 0):
            f.check("every connection made", False, "%d failed (%s)" % (
                fig["connect_failures"], fig.get("connect_failure_reasons")))
        self.rolling = {
            "listeners": total_listeners, "sessions": int(fig.get("sessions", 0)),
            "control_rate_per_speaker": ROLL_CONTROL_RATE, "duration_s": fig.get("duration_s"),
            "finals_checked": tot["finals"], "seq": tot, "control": ctot, "premark_control": cpre,
            "talk_slack_ms": ROLL_TALK_SLACK_MS, "talk_gap_max_ms": int(fig.get("seq_talk_gap_max_ms", 0) or 0),
            "talk": talk,
            "restarts": rows,
        }
        f.figures = {k: v for k, v in self.rolling.items() if k != "restarts"}

    def print_rolling(self):
        """The rolling restart's table: one row per restart."""
        r = self.rolling
        head = ["restarted", "stop ms", "live ms", "finals", "lost (gaps/seqs/unnumbered)", "repeated",
                "uncaptioned stretches (ms)", "controls sent/answered (unanswered, cut)", "result"]
        rows = []
        for x in r["restarts"]:
            c = x["control"]
            rows.append([
                x["process"].split(":")[-1],
                "-" if x["stop_ms"] is None else "%d" % x["stop_ms"],
                "-" if x["live_ms"] is None else "%d" % x["live_ms"],
                str(x["finals"]),
                "%d/%d/%d" % (x["gaps"], x["seqs_missed"], x["unnumbered"]),
                str(x["repeated"] + x["out_of_order"]),
                "%d (%d)" % (x["talk_gaps"], x["talk_gap_ms"]),
                "%d/%d (%d, %d)" % (c["sent"], c["answered"], c["unanswered"], c["cut"]),
                "pass" if x["pass"] else "FAIL",
            ])
        widths = [max(len(head[i]), *(len(x[i]) for x in rows)) if rows else len(head[i]) for i in range(len(head))]
        print()
        line = "  ".join(h.ljust(widths[i]) for i, h in enumerate(head))
        print(line)
        print("-" * len(line))
        for x in rows:
            print("  ".join(c.ljust(widths[i]) for i, c in enumerate(x)))
        s, c = r["seq"], r["control"]
        t = r["talk"]
        print("rolling restart: %d processes; finals checked %d, lost %d gaps (%d seqs) + %d never numbered, "
              "repeated %d, out of order %d; speech in no final %d ms of %d ms (per listener copy; by the talk "
              "clock %d stretches over %d ms, longest %d ms); controls sent %d, answered %d, unanswered %d, cut %d, "
              "answered twice %d" % (
                  len(r["restarts"]), r["finals_checked"], s["gaps"], s["missed"], s["unnumbered"],
                  s["duplicates"] + s["content_duplicates"], s["out_of_order"], t["uncaptioned_ms"], t["sent_ms"],
                  s["talk_gaps"], r["talk_slack_ms"], r["talk_gap_max_ms"], c["sent"], c["answered"], c["unanswered"],
                  c["cut"], c["repeated"]))
        if r["restarts"]:
            print("time per restart (SIGTERM to the replacement live everywhere): mean %.0f ms, max %.0f ms" % (
                sum(x["live_ms"] or 0 for x in r["restarts"]) / len(r["restarts"]),
                max(x["live_ms"] or 0 for x in r["restarts"])))

    def run(self):
        workers = 2
        self.stack = Stack(self.results, workers)
        try:
            self.stack.start()
        except Exception as e:
            log("the system did not start: %s" % e)
            raise SystemExit(2)
        log("system up in %s: gateways %s, redis %d (appendfsync %s)" % (
            self.stack.dir, self.stack.ports, self.stack.redis_port, self.stack.aof))
        t_up = time.monotonic()
        if "main" in self.phases:
            self.main_phase()
        if "slow" in self.phases:
            self.slow_phase()
        if "rolling" in self.phases:
            self.rolling_phase()
        ok, states = self.stack.watcher.all_running()
        if not ok:
            self.fail("not everything is RUNNING at the end: %s" % states)
        self.bad_seen = self.stack.watcher.bad_since(t_up)
        if self.bad_seen:
            self.fail("supervisord states seen: %s" % sorted({(n, s) for t, n, s in self.bad_seen}))

    # -------------------------------------------------------------- report

    def report(self):
        wall = time.monotonic() - self.t_start
        if not self.bad_seen and self.stack and self.stack.watcher:  # an aborted run
            self.bad_seen = self.stack.watcher.bad_since(0)
        rows = []
        for k, f in enumerate(self.faults):
            t_next = self.faults[k + 1].t0 if k + 1 < len(self.faults) else float("inf")
            bad = sorted({"%s %s" % (n, st) for t, n, st in self.bad_seen if f.t0 <= t < t_next})
            f.figures["supervisord_bad_states"] = bad
            fatal = bool(bad)
            s = getattr(f, "seq", None) or {k: 0 for k in SEQ_FIELDS}
            rows.append([
                f.name,
                "%.0f" % f.restart_ms if f.restart_ms is not None else "-",
                "%.0f" % f.resume_ms if getattr(f, "resume_ms", None) is not None else "-",
                str(s["duplicates"] + s["content_duplicates"]),
                str(s["out_of_order"]),
                str(s["time_regressions"]),
                "%d (%d)" % (s["gaps"], s["missed"]),
                str(s["unnumbered"]),
                "yes" if fatal else "no",
                "pass" if f.ok else "FAIL",
            ])
        head = ["fault", "restart ms", "resume ms", "dups", "out-of-order", "talk order", "gaps (seqs)", "unnumbered",
                "FATAL seen", "result"]
        widths = [max(len(head[i]), *(len(r[i]) for r in rows)) if rows else len(head[i]) for i in range(len(head))]
        line = "  ".join(h.ljust(widths[i]) for i, h in enumerate(head))
        print(line)
        print("-" * len(line))
        for r in rows:
            print("  ".join(c.ljust(widths[i]) for i, c in enumerate(r)))
        fig = self.figures
        tot = seqstat(fig, "seq")
        lost = (tot["duplicates"] + tot["content_duplicates"] + tot["out_of_order"] + tot["time_regressions"]
                + tot["unnumbered"])
        failed = [f for f in self.faults if not f.ok]
        passed = not failed and not self.failures
        if self.rolling:
            self.print_rolling()
        print()
        if "main" in self.phases:
            print("captions delivered (finals checked): %d; messages lost (dups + out of order + never numbered): %d; "
                  "visible gaps %d (%d seqs)" % (tot["finals"], lost, tot["gaps"], tot["missed"]))
        print("faults injected: %d; wall time %.0f s; %s" % (
            sum(1 for f in self.faults if f.signal != "-"), wall, "PASS" if passed else "FAIL"))
        for f in failed:
            for name, ok, detail in f.checks:
                if not ok:
                    print("  %s: %s: %s" % (f.name, name, detail))
        for x in self.failures:
            print("  " + x)
        summary = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "mode": "quick" if self.quick else "full",
            "phases": self.phases,
            "wall_s": round(wall, 1),
            "pass": passed,
            "system": {
                "gateways": 2, "control_workers": 2, "status_workers": 2, "audio_workers": 2,
                "redis_appendfsync": self.stack.aof if self.stack else None,
                "caption_ms": CAPTION_MS, "heartbeat_ms": HEARTBEAT_MS, "heartbeat_misses": HEARTBEAT_MISSES,
            },
            "load": {
                "sessions": int(fig.get("sessions", 0)),
                "listeners_per_session": int(fig.get("listeners_per_session", 0)),
                "languages": "en, es",
                "duration_s": fig.get("duration_s"),
                "caption_deliveries": int(fig.get("deliveries", 0)),
                "caption_p99_ms": fig.get("caption_p99_us", 0) / 1000.0 if fig else None,
                "speaker_refreshes": int(fig.get("speaker_refreshes", 0)),
                "per_gateway": getattr(self, "url_figures", {}),
            },
            "faults_injected": sum(1 for f in self.faults if f.signal != "-"),
            "captions_delivered": tot["finals"],
            "messages_lost": lost,
            "lost_breakdown": {
                "duplicates": tot["duplicates"], "same_segment_twice": tot["content_duplicates"],
                "out_of_order": tot["out_of_order"], "out_of_talk_order": tot["time_regressions"],
                "older_recognition_run": tot["run_regressions"], "never_numbered": tot["unnumbered"],
            },
            "visible_gaps": tot["gaps"],
            "seqs_missed": tot["missed"],
            "fatal_seen": [{"process": n, "state": s} for t, n, s in self.bad_seen],
            "faults": [
                {
                    "fault": f.name, "process": f.process, "signal": f.signal,
                    "restart_ms": round(f.restart_ms, 1) if f.restart_ms is not None else None,
                    "resume_ms": round(f.resume_ms, 1) if getattr(f, "resume_ms", None) is not None else None,
                    "seq": getattr(f, "seq", None),
                    "figures": f.figures,
                    "checks": [{"check": c[0], "ok": c[1], "detail": c[2]} for c in f.checks],
                    "pass": f.ok,
                }
                for f in self.faults
            ],
            "rolling": self.rolling,
            "failures": self.failures,
        }
        path = os.path.join(self.results, "latest.json")
        with open(path, "w") as out:
            json.dump(summary, out, indent=2, default=str)
        log("figures in %s" % path)
        return passed


def main():
    ap = argparse.ArgumentParser(description="tolk fault-injection test")
    ap.add_argument("--quick", action="store_true", help="CI form: 4 x 25 listeners, shorter windows (~2 min; the full form ~3.5 min)")
    ap.add_argument("--keep", action="store_true", help="keep the system's directory (logs) even on success")
    ap.add_argument("--results", default=os.path.join(TOP, BUILD, "fault-results"))
    ap.add_argument("--only", default="main,slow,rolling",
                    help="phases to run, in this order whatever the list's: main (the faults), slow (slow "
                    "listeners), rolling (a rolling restart of every worker) [main,slow,rolling]")
    a = ap.parse_args()
    a.only = [x.strip() for x in a.only.split(",") if x.strip()]
    bad = [x for x in a.only if x not in ("main", "slow", "rolling")]
    if bad or not a.only:
        ap.error("--only: unknown phase %s" % bad)
    os.makedirs(a.results, exist_ok=True)
    for tool in [LOADGEN] + [os.path.join(BIN, b) for b in ("tolk-gateway", "tolk-monitor")]:
        if not os.access(tool, os.X_OK):
            sys.exit("faults: %s is not built (make all build/bench/loadgen)" % tool)
    # a stack directory of an earlier run whose process is gone: remove it
    for d in os.listdir(a.results):
        m = re.match(r"stack-(\d+)$", d)
        if m and not os.path.exists("/proc/%s" % m.group(1)):
            shutil.rmtree(os.path.join(a.results, d), ignore_errors=True)
    run = Run(a)

    def on_signal(sig, frame):
        raise KeyboardInterrupt()

    signal.signal(signal.SIGTERM, on_signal)
    passed = False
    try:
        run.run()
        passed = run.report()
    except SystemExit as e:
        log("the system could not be started (logs in %s)" % (run.stack.dir if run.stack else "?"))
        code = e.code
        if run.stack:
            run.stack.stop()
        sys.exit(code)
    except BaseException as e:  # report what we have, then stop everything
        log("aborted: %s" % e)
        traceback.print_exc()
        run.fail("aborted: %s" % e)
        try:
            run.report()
        except Exception:
            traceback.print_exc()
    finally:
        for ld in (run.load, getattr(run, "load_slow", None)):  # the rolling phase's is run.load too
            if ld:
                ld.kill()
        if run.stack:
            run.stack.stop()
            if passed and not a.keep:
                shutil.rmtree(run.stack.dir, ignore_errors=True)
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
