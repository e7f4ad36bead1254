"""System-test harness for SAV: a private Redis and the four services on free
127.0.0.1 ports, savctl, and a minimal protobuf encoder/decoder for raw bus tests.

Every cluster runs with CURVE on (security.curve) unless a test asks otherwise:
its temp dir holds a keys directory with a key pair per service and an "admin"
operator, and the authorised clients file; savctl acts as admin unless a call
names another identity (add_identity makes one), and raw sockets come from
dealer(), which authenticates as a given identity.

Run with Debian's /usr/bin/python3 (it has the zmq and redis modules).
Every process started here is registered and killed at exit (atexit, SIGINT,
SIGTERM, exceptions); services and Redis also get PDEATHSIG=KILL through
setpriv when available, so they die with the harness even if it is SIGKILLed.
"""

import atexit
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

import redis
import zmq  # Debian's python3-zmq

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SERVICES = ("intake", "diagnostics", "billing", "notification")
SAVCTL_TIMEOUT = 30  # seconds, for every savctl invocation
SETPRIV = shutil.which("setpriv")

# Exit codes of savctl.
EXIT_OK, EXIT_USAGE, EXIT_REJECTED, EXIT_NOT_FOUND, EXIT_UNAVAILABLE, EXIT_FORBIDDEN = 0, 1, 2, 3, 4, 6

# Message types (proto/sav.proto).
MT_PING, MT_PONG, MT_ERROR_REPLY = 1, 2, 3


class HarnessError(Exception):
    pass


# ---------------------------------------------------------------- process registry

_procs_lock = threading.Lock()
_procs = set()


def _register(p):
    with _procs_lock:
        _procs.add(p)


def _unregister(p):
    with _procs_lock:
        _procs.discard(p)


def kill_all():
    """SIGKILLs every process this harness started and still running."""
    with _procs_lock:
        procs = list(_procs)
        _procs.clear()
    for p in procs:
        if p.poll() is None:
            try:
                p.kill()
            except OSError:
                pass
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def _on_signal(signum, frame):
    # Turn SIGTERM into an exception so every finally block runs; SIGINT already raises KeyboardInterrupt.
    raise KeyboardInterrupt("signal %d" % signum)


atexit.register(kill_all)
if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, _on_signal)
    # Also when started in the background by a shell, which leaves SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)


# ---------------------------------------------------------------- small helpers

_handed_out = set()  # ports free_ports returned: free until their user binds them, so never returned twice


def free_port_series(offsets):
    """A free TCP port P of 127.0.0.1 such that P + each offset is free too (run.sh derives ports so)."""
    for _ in range(200):
        base = free_ports(1)[0]
        if base + max(offsets) > 65535 or any(base + off in _handed_out for off in offsets if off):
            continue
        socks = []
        try:
            for off in offsets:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind(("127.0.0.1", base + off))
            _handed_out.update(base + off for off in offsets)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise HarnessError("no free series of ports %s" % (offsets,))


def free_ports(n):
    """Returns n distinct free TCP ports on 127.0.0.1 (bind port 0, read it, close), none returned before by this
    process: two calls made before anything binds would otherwise get the same port."""
    ports, socks = [], []
    try:
        while len(ports) < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            port = s.getsockname()[1]
            if port not in ports and port not in _handed_out:
                ports.append(port)
                _handed_out.add(port)
    finally:
        for s in socks:
            s.close()
    return ports


def stop_process(p, sig=signal.SIGTERM, timeout=10):
    """Sends sig to a process started by a test (if it still runs), waits (SIGKILL after timeout), forgets it;
    returns its exit code."""
    if p.poll() is None:
        try:
            p.send_signal(sig)
        except OSError:
            pass
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)
    _unregister(p)
    return p.returncode


def port_open(port, timeout=0.2):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def parse_metrics(text):
    """{(name, labels as a sorted tuple): value} of a Prometheus text page; raises ValueError on a bad line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$', line)
        if not m:
            raise ValueError("not a metric line: %r" % line)
        labels = tuple(sorted(re.findall(r'([a-zA-Z_]+)="([^"]*)"', m.group(3) or "")))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Polls pred() until it is truthy or timeout (s) passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def tail_file(path, lines=40):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
    except OSError as e:
        return "(cannot read %s: %s)" % (path, e)
    return "\n".join(data.splitlines()[-lines:])


# ---------------------------------------------------------------- protobuf by hand

def pb_varint(n):
    if n < 0:
        n &= (1 << 64) - 1  # int64 negative values: ten-byte two's complement
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_key(field, wire_type):
    return pb_varint((field << 3) | wire_type)


def pb_field_varint(field, value):
    return pb_key(field, 0) + pb_varint(value)


def pb_field_bytes(field, value):
    if isinstance(value, str):
        value = value.encode("utf-8")
    return pb_key(field, 2) + pb_varint(len(value)) + value


def pb_read_varint(buf, pos):
    result, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def pb_decode(buf):
    """Decodes one message into {field: [values]}: ints for varint/fixed, bytes for length-delimited."""
    fields, pos = {}, 0
    buf = bytes(buf)
    while pos < len(buf):
        key, pos = pb_read_varint(buf, pos)
        field, wt = key >> 3, key & 7
        if field == 0:
            raise ValueError("field number 0")
        if wt == 0:
            v, pos = pb_read_varint(buf, pos)
        elif wt == 1:
            if pos + 8 > len(buf):
                raise ValueError("truncated fixed64")
            v, pos = int.from_bytes(buf[pos:pos + 8], "little"), pos + 8
        elif wt == 2:
            n, pos = pb_read_varint(buf, pos)
            if pos + n > len(buf):
                raise ValueError("truncated length-delimited field")
            v, pos = buf[pos:pos + n], pos + n
        elif wt == 5:
            if pos + 4 > len(buf):
                raise ValueError("truncated fixed32")
            v, pos = int.from_bytes(buf[pos:pos + 4], "little"), pos + 4
        else:
            raise ValueError("unsupported wire type %d" % wt)
        fields.setdefault(field, []).append(v)
    return fields


def encode_envelope(message_id, mtype, body=b"", schema_version=1, created_at_ms=None, ticket_id=None,
                    source=None):
    """Envelope: 1 message_id, 2 type, 3 schema_version, 4 ticket_id, 5 created_at_ms, 6 source, 7 body."""
    if created_at_ms is None:
        created_at_ms = int(time.time() * 1000)
    out = pb_field_bytes(1, message_id) + pb_field_varint(2, mtype) + pb_field_varint(3, schema_version)
    if ticket_id is not None:
        out += pb_field_bytes(4, ticket_id)
    out += pb_field_varint(5, created_at_ms)
    if source is not None:
        out += pb_field_bytes(6, source)
    return out + pb_field_bytes(7, body)


def _one(fields, n, default=None):
    v = fields.get(n)
    return v[-1] if v else default


def _text(v):
    return v.decode("utf-8", "replace") if isinstance(v, (bytes, bytearray)) else v


def decode_envelope(frame):
    f = pb_decode(frame)
    return {
        "message_id": _text(_one(f, 1)),
        "type": _one(f, 2),
        "schema_version": _one(f, 3),
        "ticket_id": _text(_one(f, 4)),
        "created_at_ms": _one(f, 5),
        "source": _text(_one(f, 6)),
        "body": _one(f, 7, b""),
    }


def decode_error_reply(body):
    f = pb_decode(body)
    return {"code": _one(f, 1), "message": _text(_one(f, 2, b""))}


def decode_pong(body):
    f = pb_decode(body)
    return {"service": _text(_one(f, 1)), "version": _text(_one(f, 2)), "endpoint": _text(_one(f, 3)),
            "redis_ok": bool(_one(f, 4, 0)), "outbox_depth": _one(f, 5), "dead_letters": _one(f, 6)}


# ---------------------------------------------------------------- the cluster

def write_key_pair(keys_dir, name):
    """Writes keys_dir/name.key (0600) and name.pub as savctl keys generate does; returns (public, secret) Z85."""
    public, secret = (k.decode() for k in zmq.curve_keypair())
    os.makedirs(keys_dir, mode=0o700, exist_ok=True)
    fd = os.open(os.path.join(keys_dir, name + ".key"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# SAV CURVE secret key of %s\n%s\n" % (name, secret))
    with open(os.path.join(keys_dir, name + ".pub"), "w") as f:
        f.write("# SAV CURVE public key of %s\n%s\n" % (name, public))
    return public, secret


class Cluster:
    """One Redis, the four services and their config, in a fresh temp dir; CURVE on unless curve=False."""

    def __init__(self, bin_dir, name="sav", shards=1, curve=True):
        self.bin_dir = os.path.abspath(bin_dir)
        self.dir = tempfile.mkdtemp(prefix="sav-systest-%s-" % name)
        self.curve = curve
        # Each service reaches Redis as its own ACL user (savctl redis acl), the tests as the default user, which
        # needs a password (Redis 7.0 replays the AOF as the default user: it must keep every right).
        self.redis_admin = ("default", secrets.token_hex(16))
        self.redis_users = {s: ("sav-" + s, secrets.token_hex(16)) for s in SERVICES}
        self.redis_password_files = {s: self.secret("redis-" + s, pw)[len("file:"):]
                                     for s, (_, pw) in self.redis_users.items()}
        self.keys_dir = os.path.join(self.dir, "keys")
        self.clients_file = os.path.join(self.keys_dir, "clients")
        self.identity = "admin"  # savctl's identity unless a call names another
        self.public_keys, self.secret_keys = {}, {}
        for s in SERVICES:
            self.make_keys(s)
        self.add_identity("admin", "admin")
        ports = free_ports(1 + 2 * len(SERVICES))
        self.redis_port = ports[0]
        self.ports = dict(zip(SERVICES, ports[1:]))
        # Each service's HTTP listener (health, metrics; notification's also takes the SMS gateway's calls).
        self.http_ports = dict(zip(SERVICES, ports[1 + len(SERVICES):]))
        self.endpoints = {s: "tcp://127.0.0.1:%d" % p for s, p in self.ports.items()}
        self.shards = shards
        self.redis_proc = None
        self.procs = {}
        self._logs = []
        self._spawned = []  # every process started here (replicas, sentinels...): none outlives close()
        self.config = os.path.join(self.dir, "sav.conf")
        self.write_config(self.config)
        self._redis = None

    # -- configuration

    def config_text(self, extra=None):
        sections = {
            "redis": [("host", "127.0.0.1"), ("port", str(self.redis_port)), ("shards", str(self.shards))],
            "intake": [("endpoint", self.endpoints["intake"])] + self.redis_user_keys("intake"),
            "diagnostics": [("endpoint", self.endpoints["diagnostics"])] + self.redis_user_keys("diagnostics"),
            "billing": [("endpoint", self.endpoints["billing"])] + self.redis_user_keys("billing"),
            "notification": [("endpoint", self.endpoints["notification"]),
                             ("templates", os.path.join(REPO_ROOT, "services", "notification", "templates"))]
                            + self.redis_user_keys("notification"),
            "catalog": [("path", os.path.join(REPO_ROOT, "deploy", "local", "catalog.json"))],
            "relay": [("ack_timeout_ms", "300"), ("backoff_max_ms", "1000")],
            "client": [("timeout_ms", "2000"), ("attempts", "3"), ("identity", self.identity)],
            "security": [("curve", "on" if self.curve else "off"), ("keys_dir", self.keys_dir),
                         ("clients", self.clients_file)],
        }
        for sec, kvs in (extra or {}).items():
            sections.setdefault(sec, []).extend(kvs)
        lines = ["# SAV system test config (generated by tests/system/harness.py)"]
        for sec, kvs in sections.items():
            lines.append("")
            lines.append("[%s]" % sec)
            lines.extend("%s = %s" % kv for kv in kvs)
        return "\n".join(lines) + "\n"

    def redis_user_keys(self, service):
        return [("redis_user", self.redis_users[service][0]),
                ("redis_password", "file:" + self.redis_password_files[service]),
                ("http_listen", "127.0.0.1:%d" % self.http_ports[service])]

    def write_acl(self):
        """The Redis ACL file: each service's user with the rule savctl prints for it, and the default user behind
        the tests' password. Returns its path."""
        r = subprocess.run([self.binary("savctl"), "--config", self.config, "--json", "redis", "acl"],
                           capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise HarnessError("savctl redis acl: %s" % r.stderr.strip())
        lines = ["user %s on >%s ~* &* +@all" % self.redis_admin]
        for u in json.loads(r.stdout)["users"]:
            lines.append("user %s on >%s %s" % (u["user"], self.redis_users[u["service"]][1], u["rule"]))
        path = os.path.join(self.dir, "users.acl")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def redis_kwargs(self):
        """What a redis-py client of the tests passes to reach this cluster's Redis (as the tests' admin user)."""
        return {"host": "127.0.0.1", "port": self.redis_port, "username": self.redis_admin[0],
                "password": self.redis_admin[1]}

    def write_config(self, path, extra=None, text=None):
        with open(path, "w") as f:
            f.write(text if text is not None else self.config_text(extra))
        return path

    # -- keys and identities

    def secret(self, name, value):
        """Writes a secret (a password, a shared key) to a file of its own, mode 0600, and returns the file:PATH
        value the configuration takes (a secret is never written in the configuration itself)."""
        path = os.path.join(self.dir, "secret-" + name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(value + "\n")
        return "file:" + path

    def make_keys(self, name):
        """Writes a key pair for name in the keys directory (not authorised by itself); returns the public key."""
        self.public_keys[name], self.secret_keys[name] = write_key_pair(self.keys_dir, name)
        return self.public_keys[name]

    def add_identity(self, name, role):
        """Makes an operator identity with a role: its key pair and its line in the authorised clients file (the
        services read it again within a second); returns the public key."""
        public = self.make_keys(name)
        with open(self.clients_file, "a") as f:
            f.write("%s %s %s\n" % (public, role, name))
        return public

    def dealer(self, ctx, service, identity="admin", server_key=None, endpoint=None):
        """A DEALER connected to a service (at endpoint, default its configured one), authenticated as identity (a
        service's name for a peer service) when CURVE is on; identity None makes a plain socket. server_key
        overrides the service's public key."""
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        if self.curve and identity is not None:
            s.curve_serverkey = (server_key or self.public_keys[service]).encode()
            s.curve_publickey = self.public_keys[identity].encode()
            s.curve_secretkey = self.secret_keys[identity].encode()
        s.connect(endpoint or self.endpoints[service])
        return s

    def binary(self, name):
        path = os.path.join(self.bin_dir, name)
        if not os.access(path, os.X_OK):
            raise HarnessError("binary not found or not executable: %s" % path)
        return path

    def _spawn(self, argv, log_name, env=None):
        log_path = os.path.join(self.dir, log_name)
        if log_path not in self._logs:
            self._logs.append(log_path)
        if SETPRIV and threading.current_thread() is threading.main_thread():
            argv = [SETPRIV, "--pdeathsig", "KILL", "--"] + argv
        full_env = None
        if env:
            full_env = dict(os.environ)
            full_env.update(env)
        with open(log_path, "ab") as log:
            log.write(("==== %s start: %s%s\n" % (time.strftime("%H:%M:%S"), " ".join(argv),
                                                  "  env %s" % env if env else "")).encode())
            log.flush()
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 cwd=self.dir, start_new_session=True, env=full_env)
        _register(p)
        self._spawned.append(p)
        return p

    # -- redis

    def spawn_redis(self, port, data_dir, log_name, extra=()):
        """Starts a redis-server as the tests run it (AOF always, this cluster's ACL file) on port, its data in
        data_dir; returns the process."""
        # SIGXFSZ ignored: a test that fills the disk (RLIMIT_FSIZE) wants Redis to see write errors, not die of it.
        argv = ["/bin/sh", "-c", 'trap "" XFSZ; exec "$@"', "redis-server",
                shutil.which("redis-server") or "redis-server", "--dir", data_dir, "--appendonly", "yes",
                "--appendfsync", "always", "--save", "", "--maxmemory-policy", "noeviction",
                "--hash-max-listpack-value", "4096",
                "--bind", "127.0.0.1", "--port", str(port), "--daemonize", "no",
                "--aclfile", self.write_acl(), "--acllog-max-len", "1000"] + list(extra)
        return self._spawn(argv, log_name)

    def start_redis(self, timeout=10, extra=(), wait=True):
        """Starts redis-server (extra: more of its options); wait: until it answers PING."""
        if self.redis_proc and self.redis_proc.poll() is None:
            raise HarnessError("redis already running")
        self.redis_proc = self.spawn_redis(self.redis_port, self.dir, "redis.log", extra)
        if not wait:
            return
        r = self.redis()
        def ready():
            if self.redis_proc.poll() is not None:
                raise HarnessError("redis-server exited with %s:\n%s" % (
                    self.redis_proc.returncode, tail_file(os.path.join(self.dir, "redis.log"))))
            try:
                return r.ping()
            except (redis.exceptions.ConnectionError, redis.exceptions.BusyLoadingError, redis.exceptions.TimeoutError):
                return False
            except redis.exceptions.ResponseError:  # LOADING on older clients
                return False
        if not wait_until(ready, timeout, 0.02):
            raise HarnessError("redis did not answer PING within %ss" % timeout)

    def kill_redis(self):
        self._kill(self.redis_proc, signal.SIGKILL)

    def redis(self):
        if self._redis is None:
            self._redis = redis.Redis(socket_timeout=5, socket_connect_timeout=2, decode_responses=True,
                                      **self.redis_kwargs())
        return self._redis

    def key(self, name, shard=0):
        return "sav:{s%d}:%s" % (shard, name)

    # -- services

    def start_service(self, name, env=None):
        """Starts sav-<name>; env: extra environment variables (e.g. SAV_CLOCK_OFFSET_MS) for this process."""
        p = self.procs.get(name)
        if p and p.poll() is None:
            raise HarnessError("%s already running" % name)
        self.procs[name] = self._spawn([self.binary("sav-" + name), "--config", self.config], name + ".log", env)
        return self.procs[name]

    def _kill(self, p, sig, timeout=10):
        if not p:
            return None
        p.sav_stopped_by_harness = True
        return stop_process(p, sig, timeout)

    def stop_service(self, name, timeout=10):
        """SIGTERM then wait (SIGKILL after timeout); returns the exit code."""
        return self._kill(self.procs.get(name), signal.SIGTERM, timeout)

    def kill_service(self, name):
        return self._kill(self.procs.get(name), signal.SIGKILL)

    def restart_service(self, name, env=None, timeout=20):
        """SIGTERM, then starts it again (with env) and waits until it answers a PING."""
        self.stop_service(name)
        p = self.start_service(name, env)
        self.wait_service(name, timeout)
        return p

    def wait_service(self, name, timeout=20):
        """Waits until sav-<name> answers a PING with a PONG on its own endpoint (the others may be down)."""
        deadline = time.monotonic() + timeout
        ctx = zmq.Context.instance()
        n = 0
        while True:
            p = self.procs.get(name)
            if p is None or p.poll() is not None:
                raise HarnessError("sav-%s is not running (exit %s):\n%s" % (
                    name, p.returncode if p else None, tail_file(os.path.join(self.dir, name + ".log"))))
            if port_open(self.ports[name]):
                n += 1
                s = self.dealer(ctx, name)
                s.setsockopt(zmq.RCVTIMEO, 300)
                try:
                    s.send_multipart([b"", encode_envelope("wait-%s-%d" % (name, n), MT_PING, b"", source="harness")])
                    try:
                        frames = s.recv_multipart()
                        if decode_envelope(frames[-1])["type"] == MT_PONG:
                            return
                    except (zmq.Again, ValueError, IndexError):
                        pass
                finally:
                    s.close(linger=0)
            if time.monotonic() > deadline:
                raise HarnessError("sav-%s did not answer PING on %s within %ss" % (name, self.endpoints[name],
                                                                                   timeout))
            time.sleep(0.02)

    def service_alive(self, name):
        p = self.procs.get(name)
        return bool(p) and p.poll() is None

    def start_all(self, timeout=20):
        self.start_redis()
        for s in SERVICES:
            self.start_service(s)
        self.wait_ready(timeout)

    def stop_all(self, timeout=10):
        """SIGTERMs every running service at once, then waits; returns {name: exit code}."""
        running = {s: p for s, p in self.procs.items() if p and p.poll() is None}
        for p in running.values():
            p.sav_stopped_by_harness = True
            try:
                p.send_signal(signal.SIGTERM)
            except OSError:
                pass
        return {s: self._kill(p, signal.SIGTERM, timeout) for s, p in running.items()}

    def http_get(self, service, path):
        """(HTTP status, body) of GET path on a service's health listener; (0, why) when nobody answers."""
        url = "http://127.0.0.1:%d%s" % (self.http_ports[service], path)
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status, r.read().decode("utf-8")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8")
        except OSError as e:
            return 0, str(e)

    def wait_redis_ready(self, timeout=15):
        """Seconds until every running service's /health/ready says 200 (connected to Redis), None on timeout."""
        t0 = time.monotonic()
        running = [s for s in SERVICES if self.procs.get(s) and self.procs[s].poll() is None]
        ok = wait_until(lambda: all(self.http_get(s, "/health/ready")[0] == 200 for s in running), timeout, 0.05)
        return round(time.monotonic() - t0, 2) if ok else None

    def wait_ready(self, timeout=20):
        """Waits until every service's port accepts connections and `savctl ping` exits 0."""
        deadline = time.monotonic() + timeout
        for s in SERVICES:
            while not port_open(self.ports[s]):
                p = self.procs.get(s)
                if p is None or p.poll() is not None:
                    raise HarnessError("sav-%s is not running (exit %s)" % (s, p.returncode if p else None))
                if time.monotonic() > deadline:
                    raise HarnessError("sav-%s did not bind %s within %ss" % (s, self.endpoints[s], timeout))
                time.sleep(0.02)
        # Short client timeouts for the readiness probe only (any key can be overridden by the environment).
        env = {"SAV_CLIENT_TIMEOUT_MS": "500", "SAV_CLIENT_ATTEMPTS": "1"}
        last = None
        while True:
            last = self.savctl("ping", env=env)
            if last.returncode == 0:
                return last
            if time.monotonic() > deadline:
                raise HarnessError("savctl ping did not exit 0 within %ss (exit %d): %s%s" % (
                    timeout, last.returncode, last.stdout, last.stderr))
            time.sleep(0.05)

    # -- savctl

    def savctl(self, *args, json_out=False, env=None, config=True, timeout=SAVCTL_TIMEOUT, identity=None):
        """Runs savctl (as the config's identity, admin, unless identity names another); returns CompletedProcess."""
        argv = [self.binary("savctl")]
        if config:
            argv += ["--config", self.config]
        if identity:
            argv += ["--identity", identity]
        if json_out:
            argv.append("--json")
        argv += [str(a) for a in args]
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        try:
            return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=timeout, env=full_env, cwd=self.dir)
        except subprocess.TimeoutExpired as e:
            raise HarnessError("savctl %s timed out after %ss" % (" ".join(map(str, args)), timeout)) from e

    def savctl_json(self, *args, **kw):
        """Runs savctl --json; returns (CompletedProcess, parsed JSON or None)."""
        r = self.savctl(*args, json_out=True, **kw)
        data = None
        if r.returncode == 0:
            try:
                data = json.loads(r.stdout)
            except ValueError as e:
                raise HarnessError("savctl %s printed invalid JSON (%s): %r" % (args[:2], e, r.stdout[:500]))
        return r, data

    # -- teardown and diagnostics

    def logs(self, lines=40):
        out = []
        for path in self._logs:
            out.append("---- %s (last %d lines)" % (path, lines))
            out.append(tail_file(path, lines))
        return "\n".join(out)

    def close(self, remove=True):
        try:
            self.stop_all(timeout=5)
        except Exception:
            for s in SERVICES:
                self.kill_service(s)
        if self._redis is not None:
            try:
                self._redis.close()
            except Exception:
                pass
        self._kill(self.redis_proc, signal.SIGTERM, timeout=5)
        for p in self._spawned:
            if p.poll() is None:
                self._kill(p, signal.SIGKILL)
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close(remove=exc[0] is None)
        return False
