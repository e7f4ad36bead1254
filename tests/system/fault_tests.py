#!/usr/bin/python3
"""SAV system tests of faults beyond crashes (issue 7): Redis unreachable for 30 s, peers that accept connections
and never answer, a full disk under Redis, a service started twice with one configuration, and wall-clock jumps.
Each test drives real work through savctl while the fault lasts, checks that the system degrades with clear errors
(savctl exit 4 naming the cause, services alive, nothing half-written), then ends the fault and checks that the
system recovers by itself: every request answered OK is in Redis, every request left unanswered gets a definite
answer when sent again with its request id (the first answer, replayed, if it had been applied), each ticket's
pipeline completes, outboxes drain, no dead letter, no duplicate.

Usage: /usr/bin/python3 tests/system/fault_tests.py --bin build/bin [--only NAME[,NAME...]] [--keep]

- fault_redis_unreachable: redis-server stopped (SIGSTOP: connections hang, the hardest kind of unreachable) for
  30 s while tickets are opened: each open during the freeze ends with exit 4 and a reason; no service dies;
  after SIGCONT every ticket completes, none twice.
- fault_silent_peers: an SMTP server and an SMSC that accept connections and never say a word, then billing
  frozen (SIGSTOP) for 10 s: e-mails and SMS wait as queued with the timeout as their reason and their attempts
  not used up, the service still answers and stops promptly on SIGTERM; events to billing wait in the outbox;
  then the real peers come up on the same ports and billing resumes: everything delivered once, nothing
  dead-lettered.
- fault_disk_full: the AOF cannot grow (RLIMIT_FSIZE on redis-server): with appendfsync always Redis refuses to
  go on (it exits rather than acknowledge a write it could not log); requests fail with exit 4; the limit
  lifted and Redis restarted, it loads the AOF without the unlogged write, and every acknowledged ticket is
  there, complete.
- fault_started_twice: a second sav-intake (and sav-notification with its HTTP listener) with the same
  configuration is refused at start with a reason naming the endpoint, over tcp:// and over ipc://, before it
  touches anything; the first instance keeps serving and Redis is unchanged (every key and value compared).
- fault_clock_jumps: the wall clock of every service jumps 40 days ahead, then back to today, then ahead again
  (SAV_CLOCK_OFFSET_FILE, read again by running processes; the monotonic clock of timeouts does not move): the
  pickup reminders due at day 7 and 30 go once each, none again after the jump back; tickets opened after each
  jump complete; relays dead-letter nothing.
- fault_backlog: a destination that has thousands of messages to work through answers most of them later than
  relay.ack_timeout_ms, but it answers: billing started after 3000 tickets waited in its outbox gets them all at
  once (relay.window 4096) and is sent none of them a second time, so it does each one's work once (a relay that
  resent whatever was unanswered after the timeout sent it more than 3000 again, at the worst moment).
Every test ends as in run.py: no service died on its own, all exit 0 on SIGTERM, no sanitizer report in a log.
"""

import collections
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
SYSTEST_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, SYSTEST_DIR)
import fixtures  # noqa: E402
import harness  # noqa: E402
from fixtures import Result, TicketSpec  # noqa: E402
from notification_tests import SmtpPeer  # noqa: E402
from sms_tests import SmscPeer  # noqa: E402

EXIT_UNAVAILABLE = harness.EXIT_UNAVAILABLE


class Requests:
    """Ticket opens with request ids, sent again until each has a definite answer. ok: request id -> ticket id;
    exits: Counter of exit codes seen; reasons: a few stderr lines of exit-4 answers."""

    def __init__(self, cl, specs, tag):
        self.cl, self.tag = cl, tag
        self.specs = {"%s-%d" % (tag, s.i): s for s in specs}
        self.ok, self.pending = {}, list(self.specs)
        self.exits, self.reasons, self.slowest = collections.Counter(), [], 0.0
        self.lock = threading.Lock()

    def send(self, rid):
        s = self.specs[rid]
        t0 = time.monotonic()
        r = self.cl.savctl("--json", *s.open_args(), "--request-id", rid)
        took = time.monotonic() - t0
        with self.lock:
            self.exits[r.returncode] += 1
            self.slowest = max(self.slowest, took)
            if r.returncode == 0:
                self.ok[rid] = json.loads(r.stdout)["id"]
                return True
            if r.returncode == EXIT_UNAVAILABLE and len(self.reasons) < 3:
                self.reasons.append(r.stderr.strip()[:200])
        return False

    def run_for(self, seconds, pace=0.2):
        """Sends the pending requests one after the other for `seconds`; returns how many were sent."""
        deadline, sent = time.monotonic() + seconds, 0
        while time.monotonic() < deadline and self.pending:
            rid = self.pending.pop(0)
            if not self.send(rid):
                self.pending.append(rid)
            sent += 1
            time.sleep(pace)
        return sent

    def settle(self, res, timeout=60):
        """Sends every request still without an answer again (same request id) until it has one."""
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            rid = self.pending.pop(0)
            if not self.send(rid):
                self.pending.append(rid)
                time.sleep(0.2)
        res.check(not self.pending, "%d request(s) still without an answer %ds after the fault: %s" % (
            len(self.pending), timeout, self.pending[:3]))


def expected(reqs):
    return {tid: reqs.specs[rid].expect() for rid, tid in reqs.ok.items()}


def check_recovered(cl, res, reqs, timeout=60, recorded=True):
    """Every answered ticket completes its pipeline exactly once; outboxes drain; no dead letter. recorded: no
    sender is configured, so every message must stay recorded (fixtures.verify_tickets checks each one); else the
    caller checks the statuses."""
    exp = expected(reqs)
    res.check(len(set(reqs.ok.values())) == len(reqs.ok), "two requests answered with one ticket id")
    waited, reached = fixtures.wait_quiescent(cl, exp, timeout)
    res.fig("recovery_s", round(waited, 1))
    res.check(reached, "the pipeline did not complete within %ds after the fault" % timeout)
    res.fig("tickets", len(exp))
    if recorded:
        c = fixtures.verify_tickets(cl, res, exp)
        res.check(c["missing"] == 0 and c["losses"] == 0 and c["duplicates"] == 0, "after the fault: %s" % dict(c))
    else:
        r = cl.redis()
        short = {t: r.llen(cl.key("notifs:" + t)) for t, e in exp.items() if r.llen(cl.key("notifs:" + t)) != len(e.routes)}
        res.check(not short, "tickets without exactly their notifications after the fault: %s" % short)
    fixtures.check_drained(cl, res)


def register_specs(cl, res, n, tag):
    return fixtures.register(cl, res, [TicketSpec(i, tag) for i in range(n)])


# ---------------------------------------------------------------- 1. fault_redis_unreachable

def test_fault_redis_unreachable(cl):
    res = Result()
    cl.start_all()
    specs = register_specs(cl, res, 40, "ru")
    reqs = Requests(cl, specs, "ru")
    reqs.run_for(2, pace=0.05)
    before_ok = len(reqs.ok)
    os.kill(cl.redis_proc.pid, signal.SIGSTOP)
    t0 = time.monotonic()
    try:
        reqs.exits.clear()
        reqs.run_for(24, pace=0.5)
        during = dict(reqs.exits)
        res.fig("exits_during", during)
        res.check(during.get(EXIT_UNAVAILABLE, 0) >= 3 and not set(during) - {0, EXIT_UNAVAILABLE},
                  "savctl during the freeze: exits %s, want 4 (unavailable) and nothing else" % during)
        # The service itself says why (it fails fast while Redis is away), not only savctl's own timeout.
        res.check(any("redis" in r.lower() for r in reqs.reasons), "no exit-4 answer names Redis: %s" % reqs.reasons)
        res.fig("reason", next((r for r in reqs.reasons if "redis" in r.lower()), None))
        res.fig("slowest_savctl_s", round(reqs.slowest, 1))
        ping = cl.savctl("--json", "ping")
        res.check(ping.returncode == EXIT_UNAVAILABLE, "savctl ping during the freeze: exit %d, want 4" %
                  ping.returncode)
        alive = {s: cl.service_alive(s) for s in harness.SERVICES}
        res.check(all(alive.values()), "a service died while Redis was unreachable: %s" % alive)
        harness.wait_until(lambda: time.monotonic() - t0 >= 30, 35, 0.1)
    finally:
        os.kill(cl.redis_proc.pid, signal.SIGCONT)
    res.fig("frozen_s", round(time.monotonic() - t0, 1))
    reqs.settle(res)
    res.fig("opened", "%d before, %d in all" % (before_ok, len(reqs.ok)))
    check_recovered(cl, res, reqs)
    ping = cl.savctl("--json", "ping")
    res.check(ping.returncode == 0, "savctl ping after the freeze: exit %d %s" % (ping.returncode, ping.stdout[:300]))
    return res


# ---------------------------------------------------------------- 2. fault_silent_peers

class SilentPeer:
    """Accepts TCP connections on a port and never sends a byte (nor closes them) until stopped."""

    def __init__(self, port):
        self.port, self.conns, self.accepted = port, [], 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(c)
            self.accepted += 1

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()


def test_fault_silent_peers(cl):
    res = Result()
    smtp_port, smpp_port = harness.free_ports(2)
    cl.write_config(cl.config, extra={"notification": [
        ("smtp_url", "smtp://127.0.0.1:%d" % smtp_port), ("smtp_timeout_ms", "1500"), ("mail_retry_max_ms", "500"),
        ("mail_domain", "sav-test.example"), ("smpp_host", "127.0.0.1"), ("smpp_port", str(smpp_port)),
        ("smpp_password", cl.secret("smpp", "secret")), ("smpp_response_ms", "1500"), ("sms_retry_max_ms", "500"),
        ("sms_quiet_hours", "off")]})
    silent = [SilentPeer(smtp_port), SilentPeer(smpp_port)]
    smtp = smsc = None
    try:
        cl.start_all()
        specs = [s for s in register_specs(cl, res, 12, "sp")]
        reqs = Requests(cl, specs, "sp")
        reqs.settle(res, 30)
        tids = sorted(reqs.ok.values())
        time.sleep(5)
        r = cl.redis()
        notifs = {nid: r.hgetall(cl.key("notif:" + nid)) for nid in r.zrange(cl.key("notifs:all"), 0, -1)}
        sent = {k: v for k, v in notifs.items() if v.get("channel") in ("sms", "email")}
        st = collections.Counter(v.get("status") for v in sent.values())
        res.fig("while_silent", dict(st))
        res.fig("connections_to_silent", [p.accepted for p in silent])
        res.check(sent and set(st) <= {"queued", "sending"}, "with silent peers: statuses %s, want queued" % dict(st))
        reasons = collections.Counter((v.get("last_answer") or "")[:40] for v in sent.values() if v.get("last_answer"))
        res.fig("reasons", dict(reasons))
        res.check(all(p.accepted >= 1 for p in silent), "a sender never tried its silent peer: %s" % [
            p.accepted for p in silent])
        res.check(all(int(v.get("attempts") or 0) < 10 or v.get("status") != "failed" for v in sent.values()),
                  "a silent peer used up attempts")
        ping = cl.savctl("--json", "ping")
        res.check(ping.returncode == 0, "notification does not answer ping while its peers are silent: exit %d" %
                  ping.returncode)
        # A stop while the senders wait on silent peers is prompt (the claims in hand go back to the queue).
        t0 = time.monotonic()
        code = cl.stop_service("notification", timeout=15)
        res.fig("stop_s", round(time.monotonic() - t0, 1))
        res.check(code == 0 and time.monotonic() - t0 < 8, "sav-notification stop with silent peers: exit %s after "
                  "%.1f s" % (code, time.monotonic() - t0))
        cl.start_service("notification")
        cl.wait_service("notification")

        # Billing frozen: a service that accepts and never answers.
        os.kill(cl.procs["billing"].pid, signal.SIGSTOP)
        try:
            frozen = register_specs(cl, res, 6, "bf")
            more = Requests(cl, frozen, "bf")
            more.settle(res, 30)
            tids += sorted(more.ok.values())
            time.sleep(8)
            depth = r.xlen(cl.key("outbox:billing"))
            res.fig("outbox_billing_while_frozen", depth)
            res.check(depth >= 1, "nothing waits for frozen billing in outbox:billing")
            res.check(r.xlen(cl.key("deadletter")) == 0, "dead letters while billing was frozen")
            q = cl.savctl("--json", "invoice", "list")
            res.check(q.returncode == EXIT_UNAVAILABLE, "savctl to frozen billing: exit %d, want 4" % q.returncode)
            res.fig("to_frozen_billing", q.stderr.strip()[:120])
        finally:
            os.kill(cl.procs["billing"].pid, signal.SIGCONT)
        for p in silent:
            p.stop()
        silent = []
        smtp = SmtpPeer(cl, os.path.join(cl.dir, "smtp"), port=smtp_port).start()
        smsc = SmscPeer(cl, "after", port=smpp_port).start("--receipts")
        all_reqs = Requests(cl, [], "x")
        all_reqs.ok = dict(reqs.ok, **more.ok)
        all_reqs.specs = dict(reqs.specs, **more.specs)
        check_recovered(cl, res, all_reqs, recorded=False)

        def final():
            n = {nid: r.hgetall(cl.key("notif:" + nid)) for nid in r.zrange(cl.key("notifs:all"), 0, -1)}
            n = {k: v for k, v in n.items() if v.get("channel") in ("sms", "email")}
            return n if n and all(v.get("status") in ("sent", "delivered", "failed") for v in n.values()) else None
        harness.wait_until(final, 40, 0.2)
        n = final() or {}
        res.fig("after", dict(collections.Counter(v.get("status") for v in n.values())))
        res.check(n and all(v.get("status") in ("sent", "delivered") for v in n.values()),
                  "after the peers came back: %s" % dict(collections.Counter(v.get("status") for v in n.values())))
        mails = smtp.messages()
        ids = collections.Counter(next((line.split(b":", 1)[1].strip().decode() for line in raw.split(b"\r\n")
                                        if line.lower().startswith(b"message-id:")), name) for name, raw, _ in mails)
        res.check(all(c == 1 for c in ids.values()), "an e-mail reached the server twice: %s" % [
            k for k, c in ids.items() if c > 1][:3])
        emails = [k for k, v in n.items() if v.get("channel") == "email"]
        res.check(len(ids) == len(emails), "%d e-mails at the server for %d e-mail notifications" % (
            len(ids), len(emails)))
        res.fig("emails", len(ids))
        parts = sum(int(v.get("sms_parts") or 1) for v in n.values() if v.get("channel") == "sms")
        ok_submits = [x for x in smsc.records() if x.get("cmd") == "submit_sm_resp" and x.get("status") == 0]
        res.fig("sms_parts_accepted", "%d/%d" % (len(ok_submits), parts))
        res.check(len(ok_submits) == parts, "%d SMS parts accepted by the SMSC for %d parts to send" % (
            len(ok_submits), parts))
        return res
    finally:
        for p in silent:
            p.stop()
        if smtp:
            smtp.stop()
        if smsc:
            smsc.stop()


# ---------------------------------------------------------------- 3. fault_disk_full

def aof_incr_file(cl):
    d = os.path.join(cl.dir, "appendonlydir")
    incr = [f for f in os.listdir(d) if f.endswith(".incr.aof")]
    return os.path.join(d, sorted(incr)[-1])


def test_fault_disk_full(cl):
    res = Result()
    cl.start_all()
    specs = register_specs(cl, res, 30, "df")
    reqs = Requests(cl, specs, "df")
    while len(reqs.ok) < 10 and reqs.run_for(1, pace=0.05):
        pass
    before = dict(reqs.ok)
    # The disk is full: the AOF may not grow past what it holds now (plus a little: the next writes fail).
    size = os.path.getsize(aof_incr_file(cl))
    resource.prlimit(cl.redis_proc.pid, resource.RLIMIT_FSIZE, (size + 2048, resource.RLIM_INFINITY))
    reqs.exits.clear()
    reqs.run_for(8, pace=0.3)
    during = dict(reqs.exits)
    res.fig("exits_during", during)
    res.check(during.get(EXIT_UNAVAILABLE, 0) >= 2, "with the disk full: exits %s, want exit 4" % during)
    res.fig("reason", reqs.reasons[0] if reqs.reasons else None)
    exited = cl.redis_proc.poll()
    with open(os.path.join(cl.dir, "redis.log"), errors="replace") as f:
        log = f.read()
    res.fig("redis", "exited %s" % exited if exited is not None else "running")
    res.check(exited is not None and "AOF" in log, "Redis with a full disk: exit %s; its log should say why "
              "(an AOF write error)" % exited)
    res.fig("redis_said", next((line.split("# ", 1)[-1] for line in log.splitlines() if "AOF" in line and
                                ("error" in line.lower() or "Exiting" in line)), None))
    alive = {s: cl.service_alive(s) for s in harness.SERVICES}
    res.check(all(alive.values()), "a service died with Redis: %s" % alive)
    # The disk has room again: Redis restarts (as its supervisor would) and loads what it had logged.
    if exited is None:
        cl.kill_redis()
    cl.start_redis()
    reqs.settle(res)
    res.check(all(reqs.ok.get(rid) == tid for rid, tid in before.items()),
              "a ticket acknowledged before the disk filled is gone or changed")
    res.fig("opened", "%d before, %d in all" % (len(before), len(reqs.ok)))
    check_recovered(cl, res, reqs)
    return res


# ---------------------------------------------------------------- 4. fault_started_twice

def redis_snapshot(cl):
    """Every key with its type and value (DUMP), for comparing Redis before and after."""
    r = cl.redis()
    out = {}
    for k in r.scan_iter(count=1000):
        out[k] = r.dump(k)
    return out


def second_start(cl, name):
    argv = [cl.binary("sav-" + name), "--config", cl.config]
    t0 = time.monotonic()
    p = harness.subprocess.run(argv, capture_output=True, text=True, timeout=30, stdin=harness.subprocess.DEVNULL)
    return p.returncode, p.stderr.strip(), time.monotonic() - t0


def test_fault_started_twice(cl):
    res = Result()
    port = harness.free_ports(1)[0]
    results = {}
    cl.start_redis()
    for transport in ("tcp", "ipc"):
        if transport == "ipc":
            for s in harness.SERVICES:
                cl.endpoints[s] = "ipc://%s/%s.sock" % (cl.dir, s)
        cl.write_config(cl.config, extra={"notification": [("http_listen", "127.0.0.1:%d" % port)]})
        for s in harness.SERVICES:
            cl.start_service(s)
        ok = harness.wait_until(lambda: cl.savctl("ping").returncode == 0, 20, 0.2)
        res.check(ok, "%s: the services did not come up" % transport)
        specs = register_specs(cl, res, 4, "tw" + transport)
        reqs = Requests(cl, specs, "tw" + transport)
        reqs.settle(res, 30)
        fixtures.wait_quiescent(cl, expected(reqs), 20)
        before = redis_snapshot(cl)
        for name in ("intake", "notification"):
            code, err, took = second_start(cl, name)
            results["%s/%s" % (transport, name)] = code
            res.check(code == 1 and cl.endpoints[name] in err and "already running" in err,
                      "%s: a second sav-%s exited %d, stderr %r: want 1 naming %s and 'already running'" % (
                          transport, name, code, err[:300], cl.endpoints[name]))
            res.fig("said", err.splitlines()[-1][:160] if err else None)
        after = redis_snapshot(cl)
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        res.check(not changed, "%s: the refused second instances changed Redis: %s" % (transport, changed[:5]))
        ping = cl.savctl("--json", "ping")
        res.check(ping.returncode == 0, "%s: the first instances stopped answering: %s" % (transport, ping.stdout[:300]))
        more = Requests(cl, register_specs(cl, res, 2, "tx" + transport), "tx" + transport)
        more.settle(res, 30)
        check_recovered(cl, res, more)
        cl.stop_all()
    res.fig("second_start_exits", results)
    return res


# ---------------------------------------------------------------- 5. fault_clock_jumps

DAY_MS = 86400000


def test_fault_clock_jumps(cl):
    res = Result()
    offset_file = os.path.join(cl.dir, "clock-offset")

    def jump(days):
        tmp = offset_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % (days * DAY_MS))
        os.replace(tmp, offset_file)
        time.sleep(0.6)  # each process reads the file again within 200 ms of its next look at the time
    jump(0)
    cl.write_config(cl.config, extra={"intake": [("scheduler_ms", "300")]})
    env = {"SAV_CLOCK_OFFSET_FILE": offset_file}
    cl.start_redis()
    for s in harness.SERVICES:
        cl.start_service(s, env=env)
    cl.wait_ready()
    specs = register_specs(cl, res, 20, "cj")
    reqs = Requests(cl, specs, "cj")
    reqs.settle(res, 30)
    fixtures.wait_quiescent(cl, expected(reqs), 20)
    r = cl.redis()
    # The dropped-off repairs under the legal guarantee are repaired and wait for pickup: reminders at day 7, 30, 90.
    ready = []
    for rid, tid in reqs.ok.items():
        s = reqs.specs[rid]
        if s.kind != "repair" or s.channel != "drop_off" or (fixtures.today() - s.delivered).days > 700:
            continue
        for args in (["diagnose", tid, "--cause", "manufacturing", "--action", "repair", "--labour", "20"],
                     ["repair", "start", tid], ["repair", "done", tid]):
            fixtures.run(cl, res, *args)
        ready.append(tid)
    harness.wait_until(lambda: all(r.hget(cl.key("ticket:" + t), "state") == "ready" for t in ready), 20, 0.1)

    def reminders():
        """{ticket: how many pickup reminders it got} (one per reminder, whatever the channels)."""
        return {t: len({n.split(":")[3] for n in r.lrange(cl.key("notifs:" + t), 0, -1) if ":pickup_reminder:" in n})
                for t in ready}
    # (jump, reminders each ticket has had then): the day-7 one; none again after the jump back; the day-30 one;
    # none again 20 days back; the day-90 one. After a pause only the latest reminder due goes.
    plan = (("+8d", 8, 1), ("back", 0, 1), ("+40d", 40, 2), ("+20d", 20, 2), ("+100d", 100, 3))
    counts = {}
    for label, days, want in plan:
        jump(days)
        tag = "cj" + label.strip("+")
        more = Requests(cl, register_specs(cl, res, 2, tag), tag)
        more.settle(res, 30)
        check_recovered(cl, res, more, timeout=30)
        harness.wait_until(lambda: all(n >= want for n in reminders().values()), 10, 0.2)
        time.sleep(1.0)  # more scheduler passes at this time: nothing more may go
        counts[label] = reminders()
        res.check(all(n == want for n in counts[label].values()), "clock %s: reminders per ticket %s, want %d" % (
            label, counts[label], want))
    res.fig("ready_tickets", len(ready))
    res.check(ready, "no ticket waits for pickup: the reminders are not exercised")
    res.fig("reminders", {k: sorted(v.values()) for k, v in counts.items()})
    years = collections.Counter(t.split("-")[1] for t in r.zrange(cl.key("tickets"), 0, -1))
    res.fig("ticket_years", dict(years))
    res.check(len(years) == 2, "tickets opened across the jumps over the new year: years %s" % dict(years))
    res.check(r.xlen(cl.key("deadletter")) == 0, "dead letters after the clock jumps")
    return res


def test_fault_backlog(cl):
    res = Result()
    count, ack_timeout_ms = 3000, 150
    cl.write_config(cl.config, extra={"relay": [("window", "4096"), ("batch", "512"),
                                                ("ack_timeout_ms", str(ack_timeout_ms)),
                                                ("backoff_max_ms", str(ack_timeout_ms))]})
    cl.start_redis()
    for s in ("intake", "diagnostics", "notification"):
        cl.start_service(s)
    for s in ("intake", "diagnostics", "notification"):
        cl.wait_service(s)
    load = subprocess.run([cl.binary("sav-bench"), "--config", cl.config, "load", "--count", str(count),
                           "--window", "256"], capture_output=True, text=True, timeout=300)
    res.check(load.returncode == 0, "sav-bench: %s" % load.stderr.strip()[-300:])
    r = cl.redis()
    waiting = harness.wait_until(lambda: r.xlen(cl.key("outbox:billing")) >= count, 120, 0.2)
    res.check(waiting, "%d of %d tickets waiting for billing" % (r.xlen(cl.key("outbox:billing")), count))
    cl.start_service("billing")
    drained = harness.wait_until(lambda: all(r.xlen(cl.key(o)) == 0 for o in ("outbox:billing",
                                                                              "outbox:notification")), 180, 0.2)
    res.check(drained, "outboxes not drained")
    tids = r.zrange(cl.key("tickets"), 0, -1)
    p = r.pipeline(transaction=False)
    for t in tids:
        p.lrange(cl.key("timeline:" + t), 0, -1)
    estimated = collections.Counter()
    at = []
    for t, timeline in zip(tids, p.execute()):
        for e in map(json.loads, timeline):
            if e["event"] == "coverage.estimated":
                estimated[t] += 1
                at.append(e["at"])
    # The first message sent waited for nothing; the last one waited for all the others.
    backlog_ms = max(at) - min(at) if at else 0
    res.fig("tickets", len(tids))
    res.fig("backlog_ms", backlog_ms)
    # A message the old relay would have sent again waited more than ack_timeout_ms: the last ones waited backlog_ms.
    res.check(backlog_ms > 2 * ack_timeout_ms, "billing cleared its backlog in %d ms: no backlog longer than the "
              "ack timeout (%d ms) was exercised" % (backlog_ms, ack_timeout_ms))
    res.check(len(tids) == count and all(estimated[t] == 1 for t in tids),
              "coverage estimated once per ticket: %s" % collections.Counter(estimated[t] for t in tids))
    code, body = cl.http_get("diagnostics", "/metrics")
    page = harness.parse_metrics(body) if code == 200 else {}
    sent = page.get(("sav_relay_sent_total", (("dest", "billing"),)), 0)
    resent = page.get(("sav_relay_resent_total", (("dest", "billing"),)), -1)
    res.fig("relayed_to_billing", "%d sent, %d sent again" % (sent, resent))
    res.check(sent >= count and resent == 0, "diagnostics sent %d to billing and %d again" % (sent, resent))
    return res


TESTS = [
    ("fault_redis_unreachable", test_fault_redis_unreachable),
    ("fault_silent_peers", test_fault_silent_peers),
    ("fault_disk_full", test_fault_disk_full),
    ("fault_started_twice", test_fault_started_twice),
    ("fault_clock_jumps", test_fault_clock_jumps),
    ("fault_backlog", test_fault_backlog),
]


if __name__ == "__main__":
    sys.exit(fixtures.standalone(TESTS, __doc__))
