#!/usr/bin/python3
"""SAV system tests of scaling out and high availability (issue 9): several instances of each service; Redis
replicated and watched by Sentinel.

Usage: /usr/bin/python3 tests/system/ha_tests.py --bin build/bin [--only NAME[,NAME...]] [--keep]

- multi_instance: two instances of every service (SERVICE.endpoint lists both, each binds its own with
  SERVICE.bind, its own service.instance and HTTP listener). Requests spread over both intakes (each counts
  ticket.open in its /metrics); `savctl status` lists eight instances. Then, with both billings frozen so that
  diagnostics' messages wait for their acknowledgement, diagnostics-2 is SIGKILLed: the messages it held are
  taken over by diagnostics-1 (XAUTOCLAIM) within relay.takeover_ms plus a claim period, measured, and none is
  lost. Last, under a steady load, the second instance of intake, billing and notification is SIGKILLed: every
  ticket answered OK completes its pipeline exactly once on the survivors, nothing dead-lettered.
- sentinel_failover: a master, two replicas and three sentinels (password-protected); the services find the
  master through redis.sentinels and wait for one replica per write (redis.wait_replicas = 1). Under a steady
  load of ticket opens the master is SIGKILLed: the sentinels promote a replica (switch time measured), the
  services follow it without a restart (time to the first write measured), and every ticket answered OK before,
  during and after is there exactly once and completes its pipeline. The old master restarted becomes a
  replica. With both replicas killed, a ticket open is answered "not acknowledged" (exit 4); with one back, the
  same request id succeeds.
- redis_cluster: a Redis Cluster of three masters. Every key of SAV carries the hash tag {s0}: the test computes
  its slot (CRC16) and checks it against CLUSTER KEYSLOT. The services are pointed at a node that does not hold
  it: they follow the MOVED to the owner, and tickets complete. Under load, the slot is migrated to the third
  node (IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE): requests meanwhile are answered unavailable or succeed, the
  services follow the new MOVED, nothing acknowledged is lost, and every SAV key ends in that one slot on that
  one node.
- ha_chaos: chaos_tests' complete lifecycles and every one of its invariants (nothing acknowledged lost, no
  duplicate outside the crash window, no stuck ticket, gapless numbering, stock balanced, outboxes drained) on
  both together: two instances of every service and the Sentinel-managed Redis, while each instance and the
  master of the moment are SIGKILLed in turn (the master stays dead until a replica is promoted, then returns as
  a replica). SAV_HA_CHAOS_SECONDS (45 in make test; `make chaos-ha` runs CHAOS_SECONDS).
"""

import collections
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import redis

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
SYSTEST_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, SYSTEST_DIR)
import chaos_tests  # noqa: E402
import fixtures  # noqa: E402
import harness  # noqa: E402
from fault_tests import Requests, check_recovered  # noqa: E402
from fixtures import Result, TicketSpec  # noqa: E402
from harness import SERVICES  # noqa: E402

CLAIM_MS, TAKEOVER_MS = 500, 2000
HA_CHAOS_SECONDS = 45  # in make test; SAV_HA_CHAOS_SECONDS for longer
STALE_MS = "8000"      # notification.{mail,sms}_stale_ms on the HA stack: longer than a failover
# A sentinel counts a master down after this much silence. At 1 s, a master just promoted, busy with its replicas'
# resync and every service loading the Functions library again, was once taken for dead on this 2-core machine:
# a second failover followed within 2 s, and two tickets acknowledged in between were missing afterwards.
SENTINEL_DOWN_AFTER_MS = 2000


class Second:
    """The second instance of every service: its endpoint, HTTP listener and process."""

    def __init__(self, cl):
        ports = harness.free_ports(2 * len(SERVICES))
        self.cl = cl
        self.endpoints = {s: "tcp://127.0.0.1:%d" % p for s, p in zip(SERVICES, ports)}
        self.http = {s: ports[len(SERVICES) + i] for i, s in enumerate(SERVICES)}
        self.procs = {}

    def config(self):
        extra = {s: [("endpoint", "%s,%s" % (self.cl.endpoints[s], self.endpoints[s]))] for s in SERVICES}
        extra["relay"] = [("claim_ms", str(CLAIM_MS)), ("takeover_ms", str(TAKEOVER_MS))]
        return extra

    def start(self, s):
        env = {"SAV_%s_BIND" % s.upper(): self.endpoints[s], "SAV_SERVICE_INSTANCE": "2",
               "SAV_%s_HTTP_LISTEN" % s.upper(): "127.0.0.1:%d" % self.http[s]}
        self.procs[s] = self.cl._spawn([self.cl.binary("sav-" + s), "--config", self.cl.config], s + "-2.log", env)
        self.cl.procs[s + "-2"] = self.procs[s]

    def kill(self, s):
        p = self.procs[s]
        p.sav_stopped_by_harness = True
        harness.stop_process(p, signal.SIGKILL)


def metric(port, name, **labels):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        text = r.read().decode()
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name + ("{" + want + "}" if want else " ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def pending_of(cl, stream, consumer):
    r = cl.redis()
    try:
        for c in r.xinfo_consumers(cl.key(stream), "relay"):
            if c["name"] == consumer:
                return c["pending"]
    except Exception:
        return 0
    return 0


def test_multi_instance(cl):
    res = Result()
    second = Second(cl)
    cl.write_config(cl.config, extra=second.config())
    cl.start_redis()
    for s in SERVICES:
        cl.start_service(s)
        second.start(s)
    up = harness.wait_until(lambda: cl.savctl("ping").returncode == 0, 30, 0.2)
    if not res.check(up, "eight instances did not come up: %s" % cl.savctl("status").stdout):
        return res
    status = json.loads(cl.savctl("--json", "status").stdout)["services"]
    res.fig("instances", len(status))
    res.check(len(status) == 8 and sorted({(r["name"], r["instance"]) for r in status}) ==
              sorted((s, i) for s in SERVICES for i in ("1", "2")), "savctl status: %s" % status)

    specs = fixtures.register(cl, res, [TicketSpec(i, "mi") for i in range(40)])
    reqs = Requests(cl, specs[:20], "mi")
    reqs.settle(res, 60)
    by_instance = [metric(cl.http_ports["intake"], "sav_messages_total", type="ticket.open"),
                   metric(second.http["intake"], "sav_messages_total", type="ticket.open")]
    res.fig("ticket_open_per_intake", by_instance)
    res.check(all(n > 0 for n in by_instance), "requests did not spread over both intakes: %s" % by_instance)
    check_recovered(cl, res, reqs, timeout=30)

    # Messages in hand when their relay dies: diagnostics' relays wait for frozen billings.
    for p in (cl.procs["billing"], second.procs["billing"]):
        os.kill(p.pid, signal.SIGSTOP)
    try:
        held = Requests(cl, specs[20:30], "mh")
        held.settle(res, 60)
        harness.wait_until(lambda: pending_of(cl, "outbox:billing", "diagnostics-2") > 0, 10, 0.1)
        orphaned = pending_of(cl, "outbox:billing", "diagnostics-2")
        res.fig("held_by_diagnostics_2", orphaned)
        res.check(orphaned > 0, "diagnostics-2 held no message when it died: the takeover is not exercised")
        t0 = time.monotonic()
        second.kill("diagnostics")
    finally:
        for p in (cl.procs["billing"], second.procs["billing"]):
            os.kill(p.pid, signal.SIGCONT)
    taken = harness.wait_until(lambda: pending_of(cl, "outbox:billing", "diagnostics-2") == 0, 30, 0.05)
    took = time.monotonic() - t0
    res.fig("takeover_s", round(took, 2))
    res.check(taken and took <= (TAKEOVER_MS + 2 * CLAIM_MS) / 1000.0 + 2,
              "diagnostics-2's messages not taken over within %.1f s" % took)
    res.fig("taken_over", metric(cl.http_ports["diagnostics"], "sav_relay_taken_over_total", dest="billing"))
    check_recovered(cl, res, held, timeout=30)

    # One of each killed under load.
    load = Requests(cl, specs[30:], "ml")
    done = threading.Event()

    def opener():
        load.run_for(8, pace=0.2)
        done.set()
    t = threading.Thread(target=opener)
    t.start()
    time.sleep(1.5)
    for s in ("intake", "billing", "notification"):
        second.kill(s)
        time.sleep(0.3)
    t.join(30)
    load.settle(res, 60)
    res.fig("opened_under_kills", len(load.ok))
    all_reqs = Requests(cl, [], "all")
    all_reqs.ok = dict(reqs.ok, **held.ok, **load.ok)
    all_reqs.specs = dict(reqs.specs, **held.specs, **load.specs)
    check_recovered(cl, res, all_reqs, timeout=60)
    return res


class Replicated:
    """Two replicas of the cluster's Redis and three sentinels watching the three under the name "sav" (quorum 2,
    down after 1 s), the sentinels behind a password; the services find the master through them and count a write
    once a replica has it (redis.wait_replicas = 1)."""

    def __init__(self, cl):
        ports = harness.free_ports(5)
        self.cl = cl
        self.replica_ports, self.sentinel_ports = ports[:2], ports[2:]
        self.password = secrets.token_hex(16)
        self.redis_procs = {}  # port -> redis-server process
        self.dirs = {}

    def auth(self):
        """What a Redis of the set needs to replicate from the master, as itself a replica or after a failover."""
        return ("--masteruser", self.cl.redis_admin[0], "--masterauth", self.cl.redis_admin[1])

    def config(self):
        return {"redis": [("sentinels", ",".join("127.0.0.1:%d" % p for p in self.sentinel_ports)),
                          ("master_name", "sav"), ("sentinel_password", self.cl.secret("sentinel", self.password)),
                          ("wait_replicas", "1"), ("wait_ms", "500")]}

    def start_redis(self, port, extra=()):
        d = self.dirs.setdefault(port, os.path.join(self.cl.dir, "redis-%d" % port))
        os.makedirs(d, exist_ok=True)
        self.redis_procs[port] = self.cl.spawn_redis(port, d, "redis-%d.log" % port, self.auth() + tuple(extra))
        return self.redis_procs[port]

    def start(self):
        self.cl.start_redis(extra=self.auth())
        self.redis_procs[self.cl.redis_port] = self.cl.redis_proc
        for port in self.replica_ports:
            self.start_redis(port, ("--replicaof", "127.0.0.1", str(self.cl.redis_port)))
        for port in self.sentinel_ports:
            d = os.path.join(self.cl.dir, "sentinel-%d" % port)
            os.makedirs(d, exist_ok=True)
            conf = os.path.join(d, "sentinel.conf")
            with open(conf, "w") as f:
                f.write("port %d\nbind 127.0.0.1\ndaemonize no\ndir %s\nrequirepass %s\nsentinel sentinel-pass %s\n"
                        "sentinel monitor sav 127.0.0.1 %d 2\nsentinel auth-user sav %s\nsentinel auth-pass sav %s\n"
                        "sentinel down-after-milliseconds sav %d\nsentinel failover-timeout sav 10000\n" % (
                            port, d, self.password, self.password, self.cl.redis_port, *self.cl.redis_admin,
                            SENTINEL_DOWN_AFTER_MS))
            self.cl._spawn([shutil.which("redis-server") or "redis-server", conf, "--sentinel"],
                           "sentinel-%d.log" % port)

    def sentinel(self, port):
        return redis.Redis(port=port, password=self.password, socket_timeout=2, decode_responses=True)

    def ready(self):
        """Every sentinel sees the two replicas and enough sentinels to fail over."""
        try:
            for port in self.sentinel_ports:
                s = self.sentinel(port)
                if s.execute_command("SENTINEL", "CKQUORUM", "sav").split()[0] != "OK":
                    return False
                if len(s.execute_command("SENTINEL", "REPLICAS", "sav")) != 2:
                    return False
                if int(dict(zip(*[iter(s.execute_command("SENTINEL", "MASTER", "sav"))] * 2))["num-other-sentinels"]) != 2:
                    return False
            return True
        except (redis.exceptions.RedisError, OSError):
            return False

    def master_port(self):
        for port in self.sentinel_ports:
            try:
                return int(self.sentinel(port).execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "sav")[1])
            except (redis.exceptions.RedisError, OSError, TypeError):
                continue
        return None

    def client(self, port):
        """A client of the Redis at port, as the tests' admin user."""
        return redis.Redis(port=port, username=self.cl.redis_admin[0], password=self.cl.redis_admin[1],
                           socket_timeout=5, decode_responses=True)

    def role(self, port):
        try:
            return self.client(port).execute_command("ROLE")[0]
        except (redis.exceptions.RedisError, OSError):
            return None

    def follow(self, port):
        """Makes the tests' Redis client and end-of-test checks use the Redis at port (the new master)."""
        self.cl.redis_port, self.cl.redis_proc, self.cl._redis = port, self.redis_procs[port], None


def test_sentinel_failover(cl):
    res = Result()
    rs = Replicated(cl)
    cl.write_config(cl.config, extra=rs.config())
    rs.start()
    if not res.check(harness.wait_until(rs.ready, 40, 0.2), "the sentinels did not see two replicas and each "
                     "other within 40 s"):
        return res
    for s in SERVICES:
        cl.start_service(s)
    cl.wait_ready()
    specs = fixtures.register(cl, res, [TicketSpec(i, "sf") for i in range(60)])
    before = Requests(cl, specs[:10], "sb")
    before.settle(res, 30)
    old = cl.redis_port

    load = Requests(cl, specs[10:50], "sl")
    first_ok_after = []

    def opener():
        deadline = time.monotonic() + 20
        while load.pending and time.monotonic() < deadline:
            rid = load.pending.pop(0)
            if load.send(rid):
                if killed.is_set() and not first_ok_after:
                    first_ok_after.append(time.monotonic())
            else:
                load.pending.append(rid)
            time.sleep(0.1)
    killed = threading.Event()
    t = threading.Thread(target=opener)
    t.start()
    time.sleep(2)
    opened_before_kill = len(load.ok)
    rs.redis_procs[old].sav_stopped_by_harness = True
    harness.stop_process(rs.redis_procs[old], signal.SIGKILL)
    t_kill = time.monotonic()
    killed.set()
    moved = harness.wait_until(lambda: rs.master_port() not in (None, old), 30, 0.1)
    switch_s = time.monotonic() - t_kill
    t.join(40)
    res.fig("sentinel_switch_s", round(switch_s, 2))
    res.fig("writes_back_s", round(first_ok_after[0] - t_kill, 2) if first_ok_after else None)
    if not res.check(moved, "the sentinels did not promote a replica within 30 s"):
        return res
    new = rs.master_port()
    rs.follow(new)
    res.fig("opened_before_kill", opened_before_kill)
    res.fig("unavailable_answers", load.exits.get(4, 0))
    load.settle(res, 60)
    res.check(bool(first_ok_after), "no ticket opened after the failover")

    # The old master comes back: the sentinels make it a replica of the new one; nothing is written to it.
    rs.start_redis(old)
    res.check(harness.wait_until(lambda: rs.role(old) == "slave", 30, 0.2), "the old master did not become a "
              "replica after its restart: ROLE %s" % rs.role(old))
    after = Requests(cl, specs[50:55], "sa")
    after.settle(res, 30)

    # No replica left: a write is not acknowledged (exit 4, saying so); with one back, the same request succeeds.
    replicas = [p for p in rs.redis_procs if p != new]
    for port in replicas:
        rs.redis_procs[port].sav_stopped_by_harness = True
        harness.stop_process(rs.redis_procs[port], signal.SIGKILL)
    alone = Requests(cl, specs[55:], "sn")
    rid = alone.pending[0]
    alone.send(rid)
    res.check(alone.exits.get(4) == 1 and "not acknowledged" in "".join(alone.reasons), "a ticket opened with no "
              "replica up: exits %s %s, want 4 saying the write is not acknowledged" % (dict(alone.exits), alone.reasons))
    res.fig("without_replicas", alone.reasons[0] if alone.reasons else None)
    rs.start_redis(replicas[0])
    alone.settle(res, 30)
    waits = cl.redis().info("commandstats").get("cmdstat_wait", {}).get("calls", 0)
    res.fig("wait_calls_on_new_master", waits)
    res.check(waits > 0, "the services never sent WAIT to the new master")
    everything = Requests(cl, [], "all")
    everything.ok = dict(before.ok, **load.ok, **after.ok, **alone.ok)
    everything.specs = dict(before.specs, **load.specs, **after.specs, **alone.specs)
    check_recovered(cl, res, everything, timeout=60)
    res.fig("master_ports", "%d->%d" % (old, new))
    return res


class HaChaos(chaos_tests.Chaos):
    """The chaos of chaos_tests on the HA stack: two instances of every service, Redis replicated behind three
    sentinels (redis.wait_replicas = 1). The victims are each service's two instances and the Redis master of
    the moment: it stays dead until the sentinels promote a replica, then comes back as a replica. The SMSC and
    the SMTP server are not killed here (chaos_tests does)."""

    VICTIMS = tuple(s + sfx for s in SERVICES for sfx in ("", "-2")) + ("redis-master",)

    def __init__(self, cl, res, rng):
        super().__init__(cl, res, rng, list(self.VICTIMS))
        self.second = Second(cl)
        self.rs = Replicated(cl)
        self.failovers = []   # seconds from a master's SIGKILL to the sentinels naming another
        self.dead_master = None
        self.readers = {}     # port -> client of a replica

    def start(self):
        self.start_smsc()
        self.start_smtp()
        extra = self.config()
        for more in (self.second.config(), self.rs.config()):
            for sec, kvs in more.items():
                extra.setdefault(sec, []).extend(kvs)
        self.cl.write_config(self.cl.config, extra=extra)
        self.rs.start()
        if not harness.wait_until(self.rs.ready, 40, 0.2):
            raise harness.HarnessError("the sentinels did not see two replicas and each other within 40 s")
        for s in SERVICES:
            self.cl.start_service(s)
            self.second.start(s)
        self.cl.wait_ready(30)

    def config(self):
        """chaos_tests' configuration, but a send is taken over only when unconfirmed longer than a failover
        lasts (about 3.3 s here, and up to a second more for the reconnection): with chaos_tests' 2 s, a message
        whose confirmation waited for the new master would be sent a second time (see ARCHITECTURE, "Redis
        replicas and Sentinel")."""
        extra = super().config()
        extra["notification"] = [(k, STALE_MS if k in ("mail_stale_ms", "sms_stale_ms") else v)
                                 for k, v in extra["notification"]]
        return extra

    def check_alive(self):
        super().check_alive()
        for s in SERVICES:
            p = self.second.procs.get(s)
            if p is not None and p.poll() is not None and not getattr(p, "sav_stopped_by_harness", False):
                self.crashes.append(s + "-2")
                self.res.check(False, "sav-%s instance 2 exited %s on its own during the chaos" % (s, p.returncode))
                self.second.start(s)

    def kill(self, victim):
        if victim != "redis-master":
            if victim.endswith("-2"):
                self.kills[victim] += 1
                self.kill_log.append([time.time(), victim, None])
                self.second.kill(victim[:-2])
            else:
                super().kill(victim)
            return
        self.kills[victim] += 1
        self.kill_log.append([time.time(), victim, None])
        self.dead_master = self.rs.master_port()
        p = self.rs.redis_procs[self.dead_master]
        p.sav_stopped_by_harness = True
        t0 = time.monotonic()
        harness.stop_process(p, signal.SIGKILL)
        moved = harness.wait_until(lambda: self.rs.master_port() not in (None, self.dead_master), 30, 0.05)
        self.failovers.append(round(time.monotonic() - t0, 2) if moved else None)
        self.res.check(moved, "no failover within 30 s of killing the master at port %d" % self.dead_master)
        self.rs.follow(self.rs.master_port())

    def restart(self, victim):
        if victim == "redis-master":
            self.kill_log[-1][2] = time.time()
            self.rs.start_redis(self.dead_master)
        elif victim.endswith("-2"):
            self.kill_log[-1][2] = time.time()
            self.second.start(victim[:-2])
        else:
            super().restart(victim)

    def all_up(self):
        self.check_alive()
        for port, p in list(self.rs.redis_procs.items()):
            if p.poll() is not None:
                self.rs.start_redis(port)
        for s in SERVICES:
            if self.second.procs[s].poll() is not None:
                self.second.start(s)
        self.peers_up()
        self.cl.wait_ready(30)

    def reader(self):
        """A replica of the master of the moment: a worker waits for what survives a failover. On the master it
        could see a write that is not acknowledged yet (no replica had it), then act on it after a failover lost
        it (a quote accepted that is not there any more)."""
        for port, p in self.rs.redis_procs.items():
            if port != self.cl.redis_port and p.poll() is None:
                if port not in self.readers:
                    self.readers[port] = self.rs.client(port)
                return self.readers[port]
        return self.cl.redis()

    def died_after(self, victim, t1, t2):
        """Either instance of a service counts: a message sent twice may have been sent first by either one. And
        a master killed between the two sends: the first one's outcome, recorded without waiting for a replica,
        may have died with it (store_args.no_wait), the claim surviving: the message is sent again."""
        instance = any(v in (victim, victim + "-2") and k <= t2 and (r is None or t1 <= r) for k, v, r in self.kill_log)
        master = victim == "notification" and any(v == "redis-master" and t1 <= k <= t2 for k, v, _ in self.kill_log)
        return instance or master


def test_ha_chaos(cl):
    res = Result()
    seconds = int(os.environ.get("SAV_HA_CHAOS_SECONDS") or HA_CHAOS_SECONDS)
    seed = int(os.environ.get("SAV_TEST_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    chaos = HaChaos(cl, res, rng)
    chaos_tests.drive(cl, res, chaos, seconds, seed, rng)
    res.fig("failover_s", chaos.failovers)
    res.check(chaos.failovers, "the Redis master was never killed: no failover exercised")
    return res


def crc16_slot(key):
    """The Redis Cluster slot of a key (CRC16/XMODEM of its hash tag, mod 16384), computed here independently."""
    s = key.find("{")
    if s >= 0:
        e = key.find("}", s + 1)
        if e > s + 1:
            key = key[s + 1:e]
    crc = 0
    for b in key.encode():
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc % 16384


class Clustered:
    """A Redis Cluster of three masters (no replicas) on loopback, each with the cluster's ACL file."""

    def __init__(self, cl):
        self.cl = cl
        # A node's cluster bus listens 10000 above its port: both must be free (and the port at most 55535).
        self.ports = [harness.free_port_series((0, 10000)) for _ in range(3)]
        self.procs = {}

    def client(self, port):
        return redis.Redis(port=port, username=self.cl.redis_admin[0], password=self.cl.redis_admin[1],
                           socket_timeout=5, decode_responses=True)

    def start(self):
        for port in self.ports:
            d = os.path.join(self.cl.dir, "cluster-%d" % port)
            os.makedirs(d, exist_ok=True)
            self.procs[port] = self.cl.spawn_redis(port, d, "cluster-%d.log" % port, (
                "--cluster-enabled", "yes", "--cluster-config-file", os.path.join(d, "nodes.conf"),
                "--cluster-node-timeout", "2000"))
        for port in self.ports:
            harness.wait_until(lambda: harness.port_open(port), 10, 0.05)
        r = subprocess.run(["redis-cli", "--no-auth-warning", "--cluster", "create"] +
                           ["127.0.0.1:%d" % p for p in self.ports] + ["--cluster-yes"], capture_output=True,
                           text=True, timeout=60, stdin=subprocess.DEVNULL,
                           env=dict(os.environ, REDISCLI_AUTH=self.cl.redis_admin[1]))
        if r.returncode != 0:
            raise harness.HarnessError("redis-cli --cluster create: %s%s" % (r.stdout[-500:], r.stderr[-500:]))
        return harness.wait_until(lambda: all(self.client(p).cluster("info")["cluster_state"] == "ok"
                                              for p in self.ports), 30, 0.2)

    def node_ids(self):
        return {int(addr.split(":")[1].split("@")[0]): info["node_id"]
                for addr, info in self.client(self.ports[0]).cluster("nodes").items()}

    def owner(self, slot):
        for start, end, *nodes in self.client(self.ports[0]).execute_command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return int(nodes[0][1])
        return None

    def migrate(self, slot, source, target):
        """Moves slot from source to target as redis-cli --cluster reshard does: IMPORTING/MIGRATING, the keys
        by MIGRATE in batches, then the slot's new owner told to every node."""
        ids = self.node_ids()
        src, dst = self.client(source), self.client(target)
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source])
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target])
        moved = 0
        while True:
            keys = src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100)
            if not keys:
                break
            src.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "AUTH2", self.cl.redis_admin[0],
                                self.cl.redis_admin[1], "KEYS", *keys)
            moved += len(keys)
        for port in self.ports:
            self.client(port).execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[target])
        return moved


def test_redis_cluster(cl):
    res = Result()
    cluster = Clustered(cl)
    if not res.check(cluster.start(), "the cluster did not reach cluster_state ok"):
        return res
    slot = crc16_slot(cl.key("ticket:T-2026-000001"))
    res.check(slot == cluster.client(cluster.ports[0]).execute_command("CLUSTER", "KEYSLOT", cl.key("x")),
              "the slot computed here differs from CLUSTER KEYSLOT")
    owner = cluster.owner(slot)
    elsewhere = [p for p in cluster.ports if p != owner]
    res.fig("slot_of_s0", slot)
    # The services are pointed at a node that does not hold the slot: the first MOVED leads them to the owner.
    cl.redis_port = elsewhere[0]
    cl.write_config(cl.config)
    cl.redis_port, cl._redis = owner, None
    for s in SERVICES:
        cl.start_service(s)
    cl.wait_ready()
    specs = fixtures.register(cl, res, [TicketSpec(i, "rc") for i in range(30)])
    first = Requests(cl, specs[:15], "rc")
    first.settle(res, 60)
    def followed_moves():
        return sum(open(os.path.join(cl.dir, s + ".log")).read().count("following") for s in SERVICES)
    followed = followed_moves()
    res.fig("moved_followed", followed)
    res.check(followed >= len(SERVICES), "the services did not follow MOVED to the slot's owner: %d" % followed)

    # The slot moves to another node under load: ASK/TRYAGAIN meanwhile (answered unavailable), MOVED after.
    load = Requests(cl, specs[15:], "rm")
    t = threading.Thread(target=load.run_for, args=(6, 0.1))
    t.start()
    time.sleep(1)
    target = elsewhere[1]
    migrated = cluster.migrate(slot, owner, target)
    t.join(30)
    cl.redis_port, cl._redis = target, None
    load.settle(res, 60)
    res.fig("keys_migrated", migrated)
    res.fig("unavailable_during_migration", load.exits.get(4, 0))
    res.fig("moved_followed_after", followed_moves() - followed)
    res.check(followed_moves() - followed >= len(SERVICES), "the services did not follow the slot to its new node")
    both = Requests(cl, [], "all")
    both.ok, both.specs = dict(first.ok, **load.ok), dict(first.specs, **load.specs)
    check_recovered(cl, res, both, timeout=60)

    # Every SAV key is in the one slot, on its owner; the other nodes hold none.
    r = cluster.client(target)
    keys = list(r.scan_iter(match="sav:*", count=1000))
    slots = collections.Counter(crc16_slot(k) for k in keys)
    res.fig("keys", len(keys))
    res.check(keys and set(slots) == {slot}, "SAV keys outside slot %d: %s" % (slot, dict(slots)))
    others = {p: cluster.client(p).dbsize() for p in cluster.ports if p != target}
    res.check(not any(others.values()), "keys left on the other nodes: %s" % others)
    return res


TESTS = [
    ("multi_instance", test_multi_instance),
    ("redis_cluster", test_redis_cluster),
    ("sentinel_failover", test_sentinel_failover),
    ("ha_chaos", test_ha_chaos),
]


if __name__ == "__main__":
    sys.exit(fixtures.standalone(TESTS, __doc__))
