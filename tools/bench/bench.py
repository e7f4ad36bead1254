#!/usr/bin/python3
"""make bench: SAV's throughput and latency, measured on this machine (issue 8). Starts its own redis-server and
the four services (tests/system/harness.py, free loopback ports), drives them with the C load generator
build/bin/sav-bench, and prints per scenario one summary line and a short table:

  1. flood      N tickets opened as fast as the generator can (window of requests in flight), each going intake
                -> diagnostics (pre-diagnosis) -> billing (coverage estimate) -> notification (messages rendered
                and recorded); AOF appendfsync everysec. Tickets/s end to end (first request to last notification
                recorded), latency per hop and end to end (p50, p99, p99.9), Redis commands per ticket (those the
                services sent and the round trips they took, from their sav_redis_commands_total and
                sav_redis_round_trips_total; and those Redis executed, Functions' inner calls included, from INFO
                commandstats), messages relayed and sent again, CPU ms per ticket per process and in all, peak RSS
                per service, Redis memory per ticket.
  2. paced      the same at a fixed rate (default 1,000 tickets/s) for 30 s: the latencies of a system that keeps up.
  3. lifecycle  complete chargeable repairs (default 2,000, window of 50 in flight), driven by sav-bench lifecycle:
                ticket opened, verdict (normal wear: the customer pays, one spare part received beforehand at the
                centre), quote written by billing and accepted, repair done, invoice issued, paid, picked up; every
                SMS sent to the test SMSC (tests/system/smsc_peer.pl, receipts on; smpp_window 10, smpp_tps 10000,
                quiet hours off) and every e-mail to the test SMTP server (tests/system/smtp_peer.py); AOF
                appendfsync everysec. Lifecycles/s (first request to last pickup answered), each step's requests,
                waits (answered "not yet") and latencies, the pipeline's own delays (timelines), notifications/s from
                the first recorded to the last sent or delivered, by final status and by event, SMS submit_sm/s at
                the peer (also while sms:queue held more than the window, and after the last pickup) with the link's
                pauses, e-mails/s, duplicates seen by the peers, Redis commands, CPU ms (the peers too) and Redis
                bytes per lifecycle, and the MEMORY USAGE of a closed ticket's keys (its own, the billing records
                that stay, the dedup keys that expire), before and after `savctl archive pack` (intake.pack_after_days
                0 here).
  4. durability scenario 1 again with appendfsync always, side by side with everysec.
  5. limits     in the same run: redis-benchmark (SET and FCALL of a Function, as many clients as services) and raw
                ZeroMQ (sav-bench zmq), so that each figure is also shown as a share of the limit it is bound by.
     smpp       the SMSC peer's own ceiling, measured in the lifecycle run against the same peer: sav-bench smpp binds
                as sav-notification does and submits 10,000 one-part SMS with 10 unanswered; SAV's SMS rate is shown
                as a share of it. Then the SMS drain: the SMS of --sms tickets (default 5,000, one per customer)
                queued while the SMSC is away, drained by sav-notification alone once it is up (window 10):
                submit_sm/s at the peer, as a share of the ceiling.

Usage: /usr/bin/python3 tools/bench/bench.py --bin build/bin [--count N] [--tickets FILE] [--rate R]
       [--paced-seconds S] [--window W] [--lifecycles N] [--lifecycle-window W] [--sms N]
       [--only flood,paced,lifecycle,smpp,durability,limits] [--json FILE]
--tickets FILE replays a workload (JSON lines, format in tools/bench/workload.h and docs/PERFORMANCE.md), in scenario
3 too (instead of --lifecycles generated ones).
"""

import argparse
import bisect
import collections
import glob
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import threading
import time

import redis

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "system"))
sys.dont_write_bytecode = True
import harness  # noqa: E402
from notification_tests import SmtpPeer  # noqa: E402
from sms_tests import PASSWORD as SMPP_PASSWORD, SmscPeer  # noqa: E402

HOPS = ("open", "intake>diagnostics", "diagnostics>billing", "billing>notification", "end_to_end")
CLK_TCK = os.sysconf("SC_CLK_TCK")
STEP_LETTERS = "tdarpk"  # the request ids of sav-bench lifecycle: bench-RUN-LETTER-INDEX (lifecycles.h)
SMPP_WINDOW = 10
# The limits' Functions: touch, one write; hop, the command mix of one hop of a ticket (event_apply: its dedup key,
# the state read, the section and ticket hashes, the state index, a timeline entry, the outbox entry).
BENCH_FUNCTIONS = """#!lua name=bench
redis.register_function('touch', function(k, a) redis.call('HSET', k[1], 'at', a[1]) return 1 end)
redis.register_function('hop', function(k, a)
  if redis.call('EXISTS', k[1] .. ':seen') == 1 then return 0 end
  redis.call('HGET', k[1], 'state')
  redis.call('HSET', k[1] .. ':sec', 'basis', 'legal_conformity', 'customer_pays', '0', 'rule', 'C1', 'at', a[1])
  redis.call('HSET', k[1], 'state', 'in_diagnosis', 'updated_at', a[1], 'state_since', a[1])
  redis.call('ZREM', 'state:received', k[1])
  redis.call('ZADD', 'state:in_diagnosis', a[1], k[1])
  redis.call('RPUSH', k[1] .. ':timeline', cjson.encode({at = tonumber(a[1]), event = 'coverage.estimated',
    state = 'in_diagnosis', actor = 'billing', detail = 'legal_conformity'}))
  redis.call('XADD', 'outbox', 'MAXLEN', '~', '10000', '*', 'id', k[1], 'type', '110', 'body', a[1])
  redis.call('SET', k[1] .. ':seen', '1', 'EX', '604800')
  return 1
end)"""
SMPP_CEILING_COUNT = 10000
MEMORY_SAMPLE = 20  # closed tickets whose keys are measured
# The waits of a lifecycle on the pipeline: the ticket reaches diagnostics, the verdict billing (the quote), the
# readiness billing (the invoice).
PIPELINE_HOPS = (("ticket.received", "prediagnosis.done"), ("verdict.recorded", "quote.sent"),
                 ("repair.done", "invoice.issued"))
STALL_S = 0.035  # a pause this long between two submit_sm while SMS wait: Nagle meeting a delayed ACK (40 ms)
ID_RE = re.compile(r"(T|FAC)-\d{4}-\d{6}")
MESSAGE_ID_RE = re.compile(rb"^message-id:\s*(\S+)", re.I | re.M)


def percentile(values, p):
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))]


def proc_cpu_ms(pid):
    """utime + stime of a process, in ms."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000.0 / CLK_TCK


def proc_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def machine_cpu_ms():
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    busy = sum(fields) - fields[3] - fields[4]  # minus idle and iowait
    return busy * 1000.0 / CLK_TCK


def within(intervals, starts, t):
    """Whether t falls in one of the sorted, disjoint intervals [(start, end)] (starts: their starts)."""
    i = bisect.bisect_right(starts, t) - 1
    return i >= 0 and t < intervals[i][1]


def key_owner(name, owner):
    """The sampled ticket a key belongs to (owner: closed_ticket_memory's), by a ticket or invoice id in its name,
    the request id that ends it, or the whole name; None."""
    for m in ID_RE.finditer(name):
        if m.group(0) in owner:
            return owner[m.group(0)]
    return owner.get(name.rsplit(":", 1)[-1]) or owner.get(name)


class QueueSampler(threading.Thread):
    """Samples the SMS and e-mail queues (two ZCARD) every 0.25 s while the lifecycles run: an interval when the
    SMS sender had more waiting than its window at both ends shows its capacity, not the demand."""

    def __init__(self, cl):
        super().__init__(daemon=True)
        self.r = redis.Redis(socket_timeout=5, decode_responses=True, **cl.redis_kwargs())
        self.keys = [cl.key("sms:queue"), cl.key("mail:queue")]
        self.samples = []  # (epoch s, SMS queued, e-mails queued)
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            p = self.r.pipeline(transaction=False)
            for k in self.keys:
                p.zcard(k)
            try:
                self.samples.append((time.time(), *p.execute()))
            except redis.exceptions.RedisError:
                self.samples.append((time.time(), None, None))
            self.done.wait(0.25)

    def stop(self):
        self.done.set()
        if self.is_alive():
            self.join()
        self.r.close()


class Bench:
    def __init__(self, opts):
        self.opts = opts
        self.results = collections.OrderedDict()

    # -- the system under test

    def start(self, name, fsync):
        cl = harness.Cluster(self.opts.bin, "bench-" + name)
        cl.write_config(cl.config, extra={"relay": [("window", "4096"), ("batch", "512")],
                                          "client": [("timeout_ms", "30000")]})
        cl.start_all()
        cl.redis().config_set("appendfsync", fsync)
        cl.redis().config_set("latency-monitor-threshold", 5)
        return cl

    def pids(self, cl):
        out = {s: p.pid for s, p in cl.procs.items() if p and p.poll() is None}
        out["redis"] = cl.redis_proc.pid
        return out

    def snapshot(self, cl, peers=None):
        """CPU of the services, Redis (and peers: {name: pid}), Redis commands and memory, now."""
        r = cl.redis()
        stats = r.info("commandstats")
        calls = {k[len("cmdstat_"):]: v["calls"] for k, v in stats.items()}
        pids = dict(self.pids(cl), **(peers or {}))
        return {"cpu": {n: proc_cpu_ms(p) for n, p in pids.items()}, "machine": machine_cpu_ms(),
                "calls": calls, "memory": r.info("memory")["used_memory"], "services": self.service_counts(cl),
                "children": resource.getrusage(resource.RUSAGE_CHILDREN), "t": time.monotonic()}

    # -- one load

    def load(self, cl, label, count, rate=0, per_customer=None):
        """Runs sav-bench: registers the customers and products, then (between two snapshots) opens the tickets.
        Returns (its phase lines, the CSV of tickets, snapshot before, snapshot after the notifications)."""
        out = os.path.join(cl.dir, "tickets-%s.csv" % label)
        argv = [cl.binary("sav-bench"), "--config", cl.config, "load", "--pause", "--window", str(self.opts.window),
                "--run", "%s%d" % (label[:4], int(time.time()) % 100000), "--out", out]
        argv += ["--tickets", self.opts.tickets] if self.opts.tickets else ["--count", str(count)]
        if rate:
            argv += ["--rate", str(rate)]
        if per_customer:
            argv += ["--per-customer", str(per_customer)]
        phases, before = {}, None
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for line in proc.stdout:
            ph = json.loads(line)
            phases[ph["phase"]] = ph
            if ph["phase"] == "ready":
                before = self.snapshot(cl)
                proc.stdin.write("go\n")
                proc.stdin.flush()
        err = proc.stderr.read()
        if proc.wait() != 0 or before is None or "tickets" not in phases:
            raise harness.HarnessError("sav-bench failed: %s" % err.strip()[-500:])
        rows = [line.rstrip("\n").split(",") for line in open(out)]
        self.wait_notified(cl)
        after = self.snapshot(cl)
        self.check_notified(cl, [r[0] for r in rows])
        return phases, rows, before, after

    def run_flood(self, name, fsync, count, rate=0):
        """Opens count tickets (at rate, or flat out) and measures everything; returns the figures."""
        cl = self.start(name, fsync)
        try:
            phases, rows, before, after = self.load(cl, name, count, rate)
            figs = self.figures(cl, rows, before, after, phases)
            figs["setup_per_s"] = {k: phases[k]["per_second"] for k in ("customers", "products")}
            figs["fsync"] = fsync
            return figs
        finally:
            cl.close()

    def wait_notified(self, cl, timeout=600):
        """Waits until every ticket has its notifications. Polling each ticket would load Redis with the bench's own
        reads (tens of thousands a second): it waits instead for every outbox to be empty, three O(1) XLEN a
        poll. An entry leaves its outbox only once the next hop acknowledged it, after its write, so empty outboxes
        after the last open mean every hop is done; each ticket is checked afterwards, outside the measurement."""
        r = cl.redis()
        streams = [cl.key(ob) for ob in ("outbox:diagnostics", "outbox:billing", "outbox:notification")]
        if not harness.wait_until(lambda: all(r.xlen(s) == 0 for s in streams), timeout, 0.1):
            raise harness.HarnessError("outboxes not drained after %ds" % timeout)

    def service_counts(self, cl):
        """From each service's /metrics: {"relays": {service>dest: [sent, sent again]}, "redis": {service: [commands,
        round trips]}}. A message sent again is work done twice; the commands are those the services sent (INFO
        commandstats also counts the commands a Function runs inside Redis)."""
        out = {"relays": {}, "redis": {}}
        for s in harness.SERVICES:
            code, body = cl.http_get(s, "/metrics")
            if code != 200:
                continue
            for (name, labels), v in harness.parse_metrics(body).items():
                if name in ("sav_relay_sent_total", "sav_relay_resent_total"):
                    pair = out["relays"].setdefault("%s>%s" % (s, dict(labels)["dest"]), [0, 0])
                    pair[name == "sav_relay_resent_total"] += int(v)
                elif name in ("sav_redis_commands_total", "sav_redis_round_trips_total"):
                    out["redis"].setdefault(s, [0, 0])[name == "sav_redis_round_trips_total"] += int(v)
        return out

    def check_notified(self, cl, tids):
        """Every ticket has its notifications (one call records all of an event's channels)."""
        r = cl.redis()
        missing = 0
        for i in range(0, len(tids), 2000):
            p = r.pipeline(transaction=False)
            for t in tids[i:i + 2000]:
                p.llen(cl.key("notifs:" + t))
            missing += sum(1 for n in p.execute() if n == 0)
        if missing:
            raise harness.HarnessError("%d tickets without a notification" % missing)

    def figures(self, cl, rows, before, after, phases):
        r = cl.redis()
        n = len(rows)
        sent_ms = {t: int(s) / 1000.0 for t, s, _ in rows}
        hops = collections.defaultdict(list)
        for t, _, l in rows:
            hops["open"].append(int(l) / 1000.0)
        last_ms = 0
        tids = [row[0] for row in rows]
        for i in range(0, n, 2000):
            chunk = tids[i:i + 2000]
            p = r.pipeline(transaction=False)
            for t in chunk:
                p.hget(cl.key("ticket:" + t), "created_at")
                p.lrange(cl.key("timeline:" + t), 0, 5)
            res = p.execute()
            for k, t in enumerate(chunk):
                created = int(res[2 * k] or 0)
                at = {}
                for e in res[2 * k + 1]:
                    d = json.loads(e)
                    at.setdefault(d.get("event"), d.get("at"))
                pre, cov, notif = at.get("prediagnosis.done"), at.get("coverage.estimated"), at.get("notification.recorded")
                if pre and created:
                    hops["intake>diagnostics"].append(pre - created)
                if cov and pre:
                    hops["diagnostics>billing"].append(cov - pre)
                if notif and cov:
                    hops["billing>notification"].append(notif - cov)
                if notif:
                    hops["end_to_end"].append(notif - sent_ms[t])
                    last_ms = max(last_ms, notif)
        first_ms = min(sent_ms.values())
        seconds = (last_ms - first_ms) / 1000.0
        calls, sent, relays = self.calls(before, after)
        cpu = self.cpu_per(before, after, n)
        figs = collections.OrderedDict()
        figs["tickets"] = n
        figs["tickets_per_s"] = n / seconds if seconds > 0 else None
        figs["open_per_s"] = phases["tickets"]["per_second"]
        figs["latency_ms"] = {h: {"p50": percentile(hops[h], .5), "p99": percentile(hops[h], .99),
                                  "p99.9": percentile(hops[h], .999)} for h in HOPS}
        figs["redis_commands_per_ticket"] = sum(c for c, _ in sent.values()) / n
        figs["redis_round_trips_per_ticket"] = sum(t for _, t in sent.values()) / n
        figs["redis_commands_by_service"] = {s: round(c / n, 2) for s, (c, _) in sent.items()}
        figs["redis_executed_per_ticket"] = sum(calls.values()) / n
        figs["commands"] = {k: round(v / n, 2) for k, v in sorted(calls.items(), key=lambda kv: -kv[1])[:12]}
        figs["cpu_ms_per_ticket"] = {k: round(v, 3) for k, v in cpu.items()}
        figs["cpu_ms_per_ticket_all"] = sum(v for k, v in cpu.items())
        figs["machine_cpu_ms_per_ticket"] = (after["machine"] - before["machine"]) / n
        figs["relayed_sent_resent"] = relays
        figs["peak_rss_kib"] = {s: proc_hwm_kib(p) for s, p in self.pids(cl).items()}
        figs["redis_bytes_per_ticket"] = (after["memory"] - before["memory"]) / n
        return figs

    def calls(self, before, after):
        """Between two snapshots: ({command: calls} Redis executed, those inside Functions included; {service:
        [commands sent, round trips]}; {service>dest: [messages relayed, sent again]})."""
        calls = {k: after["calls"].get(k, 0) - before["calls"].get(k, 0) for k in after["calls"]}
        calls = {k: v for k, v in calls.items() if v > 0 and not k.startswith("info")}
        sent = {s: [a - b for a, b in zip(v, before["services"]["redis"].get(s, [0, 0]))]
                for s, v in after["services"]["redis"].items()}
        relays = {k: [a - b for a, b in zip(v, before["services"]["relays"].get(k, [0, 0]))]
                  for k, v in after["services"]["relays"].items()}
        return calls, sent, relays

    def cpu_per(self, before, after, n):
        """CPU ms per unit of work between two snapshots, per process and for the generator (bench.py's children)."""
        cpu = {k: (after["cpu"][k] - before["cpu"].get(k, 0)) / n for k in after["cpu"]}
        gen = after["children"].ru_utime + after["children"].ru_stime - before["children"].ru_utime - \
            before["children"].ru_stime
        cpu["generator"] = gen * 1000.0 / n
        return cpu

    # -- scenario 3: complete lifecycles, their SMS and e-mails sent to the test peers

    def notification_config(self, cl, smsc, smtp):
        """[notification] sending to the peers: SMS window 10, smpp_tps high enough not to be the limit, no quiet
        hours (the run must not depend on the hour)."""
        kvs = [("smpp_host", "127.0.0.1"), ("smpp_port", str(smsc.port)),
               ("smpp_password", cl.secret("smpp", SMPP_PASSWORD)), ("smpp_window", str(SMPP_WINDOW)),
               ("smpp_tps", "10000"), ("sms_quiet_hours", "off")]
        if smtp:
            kvs.append(("smtp_url", "smtp://127.0.0.1:%d" % smtp.port))
        return kvs

    def run_lifecycle(self, with_ceiling):
        """Scenario 3 on a cluster of its own whose messages go to a fresh SMSC peer (receipts on) and SMTP peer;
        with_ceiling: then the peer's own ceiling (sav-bench smpp) in the same run."""
        cl = harness.Cluster(self.opts.bin, "bench-lifecycle")
        smsc = smtp = None
        try:
            smsc = SmscPeer(cl, "bench").start("--receipts")
            smtp = SmtpPeer(cl, os.path.join(cl.dir, "smtp")).start()
            cl.write_config(cl.config, extra={"relay": [("window", "4096"), ("batch", "512")],
                                              "client": [("timeout_ms", "30000")],
                                              "intake": [("pack_after_days", "0")],
                                              "notification": self.notification_config(cl, smsc, smtp)})
            cl.start_all()
            cl.redis().config_set("appendfsync", "everysec")
            figs = self.lifecycles(cl, smsc, smtp)
            if with_ceiling:
                figs["smpp_ceiling"] = self.smpp_ceiling(cl, smsc)
            return figs
        finally:
            for peer in (smsc, smtp):
                if peer:
                    peer.stop()
            cl.close()

    def pack(self, cl, run, rows, notifs):
        """Packs the closed tickets (savctl archive pack, as intake's timer does pack_after_days after their last
        change; 0 here), then measures a closed ticket again: what it costs Redis for the rest of its two years."""
        mem0, packed, payload, value = cl.redis().info("memory")["used_memory"], 0, 0, 0
        while True:
            r = cl.savctl("archive", "pack", "--limit", "10000", "--timeout", "300", json_out=True, timeout=320)
            d = json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else None
            if not d:
                raise harness.HarnessError("savctl archive pack: %s" % r.stderr.strip()[-300:])
            packed, payload, value = packed + d["packed"], payload + d["payload_bytes"], value + d["packed_bytes"]
            if not d.get("more") or not d["packed"]:
                break
        out = collections.OrderedDict([("tickets", packed), ("payload_bytes", payload / max(packed, 1)),
                                       ("value_bytes", value / max(packed, 1))])
        out["used_memory_freed_per_ticket"] = (mem0 - cl.redis().info("memory")["used_memory"]) / max(packed, 1)
        out["closed_ticket"] = self.closed_ticket_memory(cl, run, rows, notifs)
        return out

    def run_sms_drain(self, count):
        """sav-notification's own SMS rate: count tickets' SMS queued while the SMSC is away, then the SMSC comes up
        and the sender drains the queue with nothing else to do (window 10): submit_sm per second at the peer, from
        the first to the last, and the receipts answered by then. E-mails are recorded, not sent."""
        cl = harness.Cluster(self.opts.bin, "bench-sms")
        smsc = SmscPeer(cl, "drain")
        try:
            cl.write_config(cl.config, extra={"relay": [("window", "4096"), ("batch", "512")],
                                              "client": [("timeout_ms", "30000")],
                                              "notification": self.notification_config(cl, smsc, None)})
            cl.start_all()
            cl.redis().config_set("appendfsync", "everysec")
            # One ticket per customer: a recipient's SMS go one after the other (each waits for the SMSC's answer
            # to the one before), which would measure the order kept, not the link.
            self.load(cl, "drain", count, per_customer=1)
            r = cl.redis()
            queued = r.zcard(cl.key("sms:queue"))
            cpu0 = proc_cpu_ms(cl.procs["notification"].pid)
            smsc.start("--receipts")
            queues = [cl.key("sms:queue"), cl.key("sms:sending")]
            if not harness.wait_until(lambda: all(r.zcard(q) == 0 for q in queues), 600, 0.2):
                raise harness.HarnessError("SMS still queued after 600 s")
            smsc.settle(60)
            times = sorted(x["t"] for x in smsc.submits() if x.get("source_addr") == "SAV")
            secs = times[-1] - times[0] if len(times) > 1 else 0
            return {"sms": queued, "submits": len(times), "seconds": secs,
                    "per_s": len(times) / secs if secs else 0,
                    "notification_cpu_ms_per_submit": (proc_cpu_ms(cl.procs["notification"].pid) - cpu0) /
                    max(len(times), 1)}
        finally:
            smsc.stop()
            cl.close()

    def run_smpp_alone(self):
        """The SMSC peer's ceiling without the lifecycles (--only smpp): a peer of its own, no service."""
        cl = harness.Cluster(self.opts.bin, "bench-smpp")
        smsc = None
        try:
            smsc = SmscPeer(cl, "bench").start("--receipts")
            cl.write_config(cl.config, extra={"notification": self.notification_config(cl, smsc, None)})
            return self.smpp_ceiling(cl, smsc)
        finally:
            if smsc:
                smsc.stop()
            cl.close()

    def smpp_ceiling(self, cl, smsc):
        """sav-bench smpp against this SMSC peer (the config's notification.smpp_*), and the peer's CPU meanwhile."""
        cpu0, t0 = proc_cpu_ms(smsc.proc.pid), time.monotonic()
        z = subprocess.run([cl.binary("sav-bench"), "--config", cl.config, "smpp", "--window", str(SMPP_WINDOW),
                            "--count", str(SMPP_CEILING_COUNT)], capture_output=True, text=True)
        wall = time.monotonic() - t0
        if z.returncode != 0:
            raise harness.HarnessError("sav-bench smpp failed: %s" % z.stderr.strip()[-500:])
        d = json.loads(z.stdout)
        d["peer_cpu_share"] = (proc_cpu_ms(smsc.proc.pid) - cpu0) / (wall * 1000.0)
        return d

    def lifecycles(self, cl, smsc, smtp):
        """Runs sav-bench lifecycle (registrations and stock first, then between two snapshots every lifecycle and
        every message they caused, up to the last one delivered); returns the figures."""
        o = self.opts
        run = "life%d" % (int(time.time()) % 100000)
        out = os.path.join(cl.dir, "lifecycles.csv")
        argv = [cl.binary("sav-bench"), "--config", cl.config, "lifecycle", "--pause", "--per-customer", "1",
                "--window", str(o.lifecycle_window), "--run", run, "--out", out]
        argv += ["--tickets", o.tickets] if o.tickets else ["--count", str(o.lifecycles)]
        peers = {"smsc": smsc.proc.pid, "smtp": smtp.proc.pid}
        lines, before, sampler = [], None, QueueSampler(cl)
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            for line in proc.stdout:
                d = json.loads(line)
                lines.append(d)
                if d.get("phase") == "ready":
                    before = self.snapshot(cl, peers)
                    sampler.start()
                    proc.stdin.write("go\n")
                    proc.stdin.flush()
            err = proc.stderr.read()
            if proc.wait() != 0 or before is None or not any(d.get("phase") == "lifecycles" for d in lines):
                raise harness.HarnessError("sav-bench lifecycle failed: %s" % err.strip()[-500:])
            rows = [line.rstrip("\n").split(",") for line in open(out)]
            self.wait_sent(cl, smsc)
        finally:
            sampler.stop()
        after = self.snapshot(cl, peers)
        return self.lifecycle_figures(cl, smsc, smtp, run, lines, rows, before, after, sampler.samples)

    def wait_sent(self, cl, smsc, timeout=600):
        """Waits until every message has left: outboxes empty (every notice recorded), no SMS or e-mail queued or
        claimed, then every receipt the SMSC peer sent answered (sav-notification answers one once it recorded it;
        read in the peer's log, not in Redis, whose commands are being counted)."""
        r = cl.redis()
        streams = [cl.key(ob) for ob in ("outbox:diagnostics", "outbox:billing", "outbox:notification")]
        queues = [cl.key(q) for q in ("sms:queue", "sms:sending", "mail:queue", "mail:sending")]
        if not harness.wait_until(lambda: all(r.xlen(s) == 0 for s in streams) and
                                  all(r.zcard(q) == 0 for q in queues), timeout, 0.1):
            raise harness.HarnessError("messages still queued after %ds" % timeout)
        smsc.settle(30)

    def notifications(self, cl, tids):
        """[{ticket, id, channel, status, at, sent_at, delivered_at, resent_after_crash, message_ids}] of the
        tickets' notifications."""
        r = cl.redis()
        fields = ("channel", "status", "at", "sent_at", "delivered_at", "resent_after_crash", "message_ids")
        out = []
        for i in range(0, len(tids), 1000):
            chunk = tids[i:i + 1000]
            p = r.pipeline(transaction=False)
            for t in chunk:
                p.lrange(cl.key("notifs:" + t), 0, -1)
            ids = [(t, nid) for t, nids in zip(chunk, p.execute()) for nid in nids]
            p = r.pipeline(transaction=False)
            for _, nid in ids:
                p.hmget(cl.key("notif:" + nid), fields)
            for (t, nid), values in zip(ids, p.execute()):
                out.append(dict(zip(fields, values), ticket=t, id=nid))
        return out

    def lifecycle_figures(self, cl, smsc, smtp, run, lines, rows, before, after, samples):
        summary = next(d for d in lines if d.get("phase") == "lifecycles")
        n = summary["ok"]
        if not n:
            raise harness.HarnessError("no lifecycle finished: %s" % summary["first_error"])
        notifs = self.notifications(cl, [row[0] for row in rows])
        figs = collections.OrderedDict()
        figs["lifecycles"] = n
        figs["errors"] = summary["errors"]
        figs["first_error"] = summary["first_error"]
        figs["window"] = self.opts.lifecycle_window
        figs["lifecycles_per_s"] = summary["per_second"]
        figs["lifecycle_ms"] = {k: summary[k + "_us"] / 1000.0 for k in ("p50", "p99", "p999", "max")}
        figs["waits_per_lifecycle"] = summary["waits"] / n
        figs["steps"] = collections.OrderedDict(
            (d["step"], {k: d[k] for k in ("requests", "waits", "p50_us", "p99_us", "ready_p50_us", "ready_p99_us")})
            for d in lines if "step" in d)
        figs["setup_per_s"] = {d["phase"]: d["per_second"] for d in lines if d.get("phase") in ("customers",
                                                                                                 "products")}
        figs["pipeline_ms"] = self.pipeline_delays(cl, [row[0] for row in rows])
        figs.update(self.notification_figures(notifs))
        mail = figs["by_channel"]["email"]
        mail["peer_cpu_share"] = (after["cpu"]["smtp"] - before["cpu"]["smtp"]) / (mail["seconds"] * 1000.0) \
            if mail["seconds"] else None
        mail["connections"] = smtp.connections()
        figs["sms"] = self.sms_figures(smsc, samples, before, after, max(int(row[4]) for row in rows) / 1e6)
        figs["duplicates"] = {"sms_parts": figs["sms"].pop("duplicates"), "emails": self.email_duplicates(smtp),
                              "resent_after_crash": sum(int(x["resent_after_crash"] or 0) for x in notifs)}
        calls, sent, relays = self.calls(before, after)
        cpu = self.cpu_per(before, after, n)
        figs["redis_commands_per_lifecycle"] = sum(c for c, _ in sent.values()) / n
        figs["redis_round_trips_per_lifecycle"] = sum(t for _, t in sent.values()) / n
        figs["redis_executed_per_lifecycle"] = sum(calls.values()) / n
        figs["commands"] = {k: round(v / n, 2) for k, v in sorted(calls.items(), key=lambda kv: -kv[1])[:12]}
        figs["cpu_ms_per_lifecycle"] = {k: round(v, 3) for k, v in cpu.items()}
        figs["cpu_ms_per_lifecycle_all"] = sum(cpu.values())
        figs["machine_cpu_ms_per_lifecycle"] = (after["machine"] - before["machine"]) / n
        figs["relayed_sent_resent"] = relays
        figs["redis_bytes_per_lifecycle"] = (after["memory"] - before["memory"]) / n
        figs["closed_ticket"] = self.closed_ticket_memory(cl, run, rows, notifs)
        figs["packed"] = self.pack(cl, run, rows, notifs)
        return figs

    def pipeline_delays(self, cl, tids):
        """The asynchronous hops a lifecycle waits for, from the tickets' timelines (the services' own clocks, not the
        generator's polling): p50 and p99 in ms of each PIPELINE_HOPS pair."""
        r = cl.redis()
        delays = collections.defaultdict(list)
        for i in range(0, len(tids), 1000):
            p = r.pipeline(transaction=False)
            for t in tids[i:i + 1000]:
                p.lrange(cl.key("timeline:" + t), 0, -1)
            for entries in p.execute():
                at = {}
                for e in entries:
                    d = json.loads(e)
                    at.setdefault(d.get("event"), d.get("at"))
                for a, b in PIPELINE_HOPS:
                    if at.get(a) and at.get(b):
                        delays["%s>%s" % (a, b)].append(at[b] - at[a])
        return collections.OrderedDict(("%s>%s" % (a, b), {"p50": percentile(delays["%s>%s" % (a, b)], .5),
                                                             "p99": percentile(delays["%s>%s" % (a, b)], .99)})
                                       for a, b in PIPELINE_HOPS)

    def notification_figures(self, notifs):
        """Notifications by channel and final status, and per second from the first recorded to the last sent (an
        e-mail the SMTP server accepted) or delivered (an SMS whose receipts came): overall and per channel."""
        out = collections.OrderedDict()
        out["notifications"] = len(notifs)
        out["notifications_by_status"] = dict(collections.Counter("%s %s" % (x["channel"], x["status"])
                                                                  for x in notifs))
        out["notifications_by_event"] = dict(collections.Counter(x["id"].split(":")[1] for x in notifs))

        def rate(xs):
            done = [int(x["delivered_at"] or x["sent_at"]) for x in xs if x["status"] in ("sent", "delivered")]
            first = min((int(x["at"]) for x in xs if x["at"]), default=0)
            secs = (max(done) - first) / 1000.0 if done else 0
            return {"delivered": len(done), "seconds": secs, "per_s": len(done) / secs if secs > 0 else 0}
        out["notifications_delivered"] = rate(notifs)
        out["by_channel"] = {ch: rate([x for x in notifs if x["channel"] == ch]) for ch in ("sms", "email")}
        return out

    def sms_figures(self, smsc, samples, before, after, last_pickup):
        """SAV's submit_sm at the peer (its log's timestamps): per second from the first to the last, over the
        sampled intervals when sms:queue held more than the window at both ends (the sender's capacity, not the
        demand), and after the last pickup (epoch s) when the sender had Redis and the machine to itself; parts the
        peer accepted twice (same destination and bytes); the peer's CPU over the sending."""
        recs = smsc.records()
        submits = {r["n"]: r for r in recs if r.get("dir") == "in" and r.get("cmd") == "submit_sm" and
                   r.get("source_addr") == "SAV"}
        accepted = [submits[r["for"]] for r in recs if r.get("dir") == "out" and r.get("cmd") == "submit_sm_resp"
                    and r.get("status") == 0 and r.get("for") in submits]
        times = sorted(r["t"] for r in submits.values())
        secs = times[-1] - times[0] if len(times) > 1 else 0
        backlog = [(t0, t1) for (t0, q0, _), (t1, q1, _) in zip(samples, samples[1:])
                   if q0 is not None and q1 is not None and q0 > SMPP_WINDOW and q1 > SMPP_WINDOW]
        backlog_s = sum(t1 - t0 for t0, t1 in backlog)
        backlog_n = sum(bisect.bisect_left(times, t1) - bisect.bisect_left(times, t0) for t0, t1 in backlog)
        starts = [t0 for t0, _ in backlog]
        stalls = [b - a for a, b in zip(times, times[1:]) if b - a >= STALL_S and within(backlog, starts, a)]
        tail = times[bisect.bisect_left(times, last_pickup):]
        tail_s = tail[-1] - last_pickup if tail else 0
        keys = collections.Counter((r["dest_addr"], r["short_message_hex"]) for r in accepted)
        peer_ms = after["cpu"]["smsc"] - before["cpu"]["smsc"]
        return {"submits": len(times), "accepted": len(accepted), "seconds": secs,
                "per_s": len(times) / secs if secs > 0 else 0, "backlog_seconds": backlog_s,
                "backlog_per_s": backlog_n / backlog_s if backlog_s > 0 else None,
                "stalls": len(stalls), "stalled_seconds": sum(stalls),
                "after_pickups_seconds": tail_s, "after_pickups_per_s": len(tail) / tail_s if tail_s >= 1 else None,
                "max_sms_queue": max((q for _, q, _ in samples if q is not None), default=0),
                "max_mail_queue": max((q for _, _, q in samples if q is not None), default=0),
                "peer_cpu_share": peer_ms / (secs * 1000.0) if secs > 0 else None,
                "duplicates": sum(c - 1 for c in keys.values())}

    def email_duplicates(self, smtp):
        """E-mails the SMTP peer received more than once (the same Message-ID)."""
        ids = collections.Counter()
        for path in glob.glob(os.path.join(smtp.folder, "*.eml")):
            with open(path, "rb") as f:
                head = f.read(8192).split(b"\r\n\r\n", 1)[0]
            m = MESSAGE_ID_RE.search(head)
            if m:
                ids[m.group(1)] += 1
        return sum(c - 1 for c in ids.values())

    def closed_ticket_memory(self, cl, run, rows, notifs):
        """MEMORY USAGE (SAMPLES 0: exact) of the keys of up to MEMORY_SAMPLE closed tickets whose customer gets both
        SMS and e-mails, per ticket: its own keys by kind, the billing records that stay (invoice, payments,
        invoice_for), and the keys that expire (TTL: req:*, seen:*, sms:msgid:*, after redis.dedup_ttl_days). The
        keys are found by the ids in their names in one SCAN of the whole key space (and sms:msgid:* through the
        SMS's message_ids), so whatever a closed ticket is kept as (a packed form too) is what is measured."""
        channels = collections.defaultdict(set)
        for x in notifs:
            channels[x["ticket"]].add(x["channel"])
        full = [row for row in rows if channels[row[0]] >= {"sms", "email"}]
        sample = full[::max(1, len(full) // MEMORY_SAMPLE)][:MEMORY_SAMPLE]
        owner = {}  # a ticket id, invoice id, request id or sms:msgid key -> its sampled ticket
        for tid, invoice, index, *_ in sample:
            owner[tid] = owner[invoice] = tid
            for letter in STEP_LETTERS:
                owner["bench-%s-%s-%s" % (run, letter, index)] = tid
        for x in notifs:
            for mid in re.split("[;,]", x["message_ids"] or "") if x["ticket"] in owner else ():
                owner["sms:msgid:" + mid] = x["ticket"]
        r = cl.redis()
        prefix = cl.key("")
        per = collections.defaultdict(lambda: [0, 0])  # (category, kind) -> [keys, bytes]
        for key in r.scan_iter(match=prefix + "*", count=5000):
            name = key[len(prefix):]
            if not key_owner(name, owner):
                continue
            kind = ":".join(c for c in name.split(":") if not any(ch.isdigit() for ch in c))
            kind = kind.split(":")[0] if kind.split(":")[0] in ("notif", "req", "seen") else kind
            category = "expiring" if r.ttl(key) >= 0 else "billing" if name.startswith(("invoice", "claim")) \
                else "ticket"
            cell = per[(category, kind)]
            cell[0] += 1
            cell[1] += r.memory_usage(key, samples=0) or 0
        k = len(sample) or 1
        out = collections.OrderedDict([("tickets", len(sample))])
        for category in ("ticket", "billing", "expiring"):
            kinds = sorted(((kind, keys / k, size / k) for (cat, kind), (keys, size) in per.items()
                            if cat == category), key=lambda x: -x[2])
            out[category] = {"bytes": sum(x[2] for x in kinds), "keys": sum(x[1] for x in kinds),
                             "kinds": collections.OrderedDict((kind, [round(keys, 1), round(size)])
                                                              for kind, keys, size in kinds)}
        return out

    # -- limits

    def limits(self):
        out = collections.OrderedDict()
        z = subprocess.run([os.path.join(self.opts.bin, "sav-bench"), "zmq", "--size", "200", "--count", "1000000",
                            "--rtts", "20000"], capture_output=True, text=True, check=True)
        for line in z.stdout.splitlines():
            d = json.loads(line)
            out["zmq_" + d["zmq"]] = d
        port = harness.free_ports(1)[0]
        d = "/tmp/sav-bench-redis-%d" % port
        os.makedirs(d, exist_ok=True)
        srv = subprocess.Popen(["redis-server", "--port", str(port), "--dir", d, "--appendonly", "yes", "--save", ""],
                               stdout=subprocess.DEVNULL)
        try:
            harness.wait_until(lambda: harness.port_open(port), 10, 0.05)
            subprocess.run(["redis-cli", "-p", str(port), "FUNCTION", "LOAD", "REPLACE", BENCH_FUNCTIONS], check=True,
                           capture_output=True)
            for fsync in ("everysec", "always"):
                subprocess.run(["redis-cli", "-p", str(port), "CONFIG", "SET", "appendfsync", fsync], check=True,
                               capture_output=True)
                for label, args in (("set", ["-t", "set"]), ("fcall", ["FCALL", "touch", "1", "hash:__rand_int__",
                                                                      "1"])):
                    for clients in (1, 4):
                        rb = subprocess.run(["redis-benchmark", "-p", str(port), "-c", str(clients), "-n", "50000",
                                             "-r", "100000", "--csv"] + args, capture_output=True, text=True)
                        lines = rb.stdout.strip().splitlines()
                        if rb.returncode != 0 or len(lines) < 2:
                            raise harness.HarnessError("redis-benchmark %s: %s %s" % (" ".join(args), rb.stdout,
                                                                                     rb.stderr))
                        rate = float(lines[-1].split(",")[1].strip('"'))
                        out["redis_%s_%s_c%d" % (label, fsync, clients)] = rate
                # What Redis does at most of one hop's command mix, pipelined as the services pipeline a burst.
                rb = subprocess.run(["redis-benchmark", "-p", str(port), "-c", "4", "-P", "32", "-n", "100000", "-r",
                                     "1000000", "--csv", "FCALL", "hop", "1", "t:__rand_int__", "1796000000000"],
                                    capture_output=True, text=True)
                lines = rb.stdout.strip().splitlines()
                if rb.returncode != 0 or len(lines) < 2:
                    raise harness.HarnessError("redis-benchmark hop: %s %s" % (rb.stdout, rb.stderr))
                out["redis_hop_%s_p32" % fsync] = float(lines[-1].split(",")[1].strip('"'))
        finally:
            srv.terminate()
            srv.wait()
            shutil.rmtree(d, ignore_errors=True)
        return out

    # -- printing

    def print_flood(self, title, f):
        lat = f["latency_ms"]
        print("%s: %.0f tickets/s end to end (%s, %d tickets; opens answered at %.0f/s), p99 end to end %.1f ms, "
              "%.1f Redis commands/ticket in %.2f round trips (%.1f executed, counting those inside Functions), "
              "%.3f CPU ms/ticket (machine %.3f), %.0f B Redis/ticket" % (
                  title, f["tickets_per_s"] or 0, f["fsync"], f["tickets"], f["open_per_s"],
                  lat["end_to_end"]["p99"] or 0, f["redis_commands_per_ticket"], f["redis_round_trips_per_ticket"],
                  f["redis_executed_per_ticket"], f["cpu_ms_per_ticket_all"], f["machine_cpu_ms_per_ticket"],
                  f["redis_bytes_per_ticket"]))
        print("    %-22s %9s %9s %9s" % ("latency (ms)", "p50", "p99", "p99.9"))
        for h in HOPS:
            v = lat[h]
            print("    %-22s %9s %9s %9s" % (h, *("%.1f" % v[k] if v[k] is not None else "-" for k in
                                                   ("p50", "p99", "p99.9"))))
        print("    CPU ms/ticket: " + ", ".join("%s %.3f" % kv for kv in f["cpu_ms_per_ticket"].items()))
        print("    relayed (sent/sent again): " + ", ".join("%s %d/%d" % (k, *v) for k, v in
                                                              f["relayed_sent_resent"].items()))
        print("    peak RSS KiB: " + ", ".join("%s %d" % kv for kv in f["peak_rss_kib"].items()))
        print("    Redis commands/ticket sent, by service: " + ", ".join(
            "%s %.2f" % kv for kv in f["redis_commands_by_service"].items()))
        print("    Redis commands/ticket executed: " + ", ".join("%s %.2f" % kv for kv in f["commands"].items()))

    def print_lifecycle(self, f):
        n, d, sms, mem = f["lifecycles"], f["notifications_delivered"], f["sms"], f["closed_ticket"]
        ceiling = f.get("smpp_ceiling")
        sms_rate = sms["backlog_per_s"] if sms["backlog_seconds"] >= 1 else sms["per_s"]
        dups = f["duplicates"]
        print("3. lifecycle: %.0f lifecycles/s (%d chargeable repairs opened to picked up%s, everysec, %d in flight; "
              "%.1f waits/lifecycle), %.0f notifications/s delivered (%d), SMS %.0f submit_sm/s at the peer%s, "
              "%d duplicates, %.1f Redis commands/lifecycle in %.1f round trips (%.1f executed), %.1f CPU "
              "ms/lifecycle (machine %.1f), %.0f B Redis/lifecycle (a closed ticket's own keys %.0f B)" % (
                  f["lifecycles_per_s"], n, ", %d failed" % f["errors"] if f["errors"] else "", f["window"],
                  f["waits_per_lifecycle"], d["per_s"], d["delivered"], sms_rate,
                  " (%.0f%% of its ceiling, %.0f/s)" % (100.0 * sms_rate / ceiling["resp_per_s"],
                                                        ceiling["resp_per_s"]) if ceiling else "",
                  dups["sms_parts"] + dups["emails"], f["redis_commands_per_lifecycle"],
                  f["redis_round_trips_per_lifecycle"], f["redis_executed_per_lifecycle"], f["cpu_ms_per_lifecycle_all"],
                  f["machine_cpu_ms_per_lifecycle"], f["redis_bytes_per_lifecycle"], mem["ticket"]["bytes"]))
        if f["errors"]:
            print("    first error: %s" % f["first_error"])
        print("    %-16s %9s %7s %8s %8s %17s %9s" % ("step", "requests", "waits", "p50 ms", "p99 ms",
                                                      "after prev. p50", "p99 ms"))
        for name, v in f["steps"].items():
            print("    %-16s %9d %7d %8.1f %8.1f %17.1f %9.1f" % (
                name, v["requests"], v["waits"], v["p50_us"] / 1000.0, v["p99_us"] / 1000.0,
                v["ready_p50_us"] / 1000.0, v["ready_p99_us"] / 1000.0))
        print("    pipeline (timelines): " + ", ".join(
            "%s p50 %s p99 %s ms" % (hop, v["p50"], v["p99"]) for hop, v in f["pipeline_ms"].items()))
        lc = f["lifecycle_ms"]
        print("    %-16s %34s %8.1f ms p50, %.1f p99, %.1f p99.9" % ("lifecycle", "open to pickup answered",
                                                                      lc["p50"], lc["p99"], lc["p999"]))
        ch = f["by_channel"]
        print("    notifications: %s (%s); %.0f/s from the first recorded to the last delivered in %.1f s (SMS "
              "%.0f/s, e-mail %.0f/s)" % (
                  ", ".join("%s %d" % kv for kv in sorted(f["notifications_by_status"].items())),
                  ", ".join("%s %d" % kv for kv in f["notifications_by_event"].items()),
                  d["per_s"], d["seconds"], ch["sms"]["per_s"], ch["email"]["per_s"]))
        print("    e-mail: %d sent over %d SMTP connection(s) in %.1f s: %.0f/s; SMTP peer CPU %.0f%% of a core while "
              "SAV sent" % (ch["email"]["delivered"], ch["email"]["connections"], ch["email"]["seconds"],
                            ch["email"]["per_s"], 100.0 * (ch["email"]["peer_cpu_share"] or 0)))
        print("    SMS at the peer: %d submit_sm (%d accepted) in %.1f s: %.0f/s; %s%s; sms:queue at most %d, "
              "mail:queue %d; peer CPU %.0f%% of a core while SAV sent" % (
                  sms["submits"], sms["accepted"], sms["seconds"], sms["per_s"],
                  "while sms:queue held more than %d: %.0f/s over %.1f s" % (SMPP_WINDOW, sms["backlog_per_s"],
                                                                              sms["backlog_seconds"])
                  if sms["backlog_seconds"] else "sms:queue never held more than %d: the rate is the demand" %
                  SMPP_WINDOW,
                  "; after the last pickup (the sender alone) %.0f/s over %.1f s" % (
                      sms["after_pickups_per_s"], sms["after_pickups_seconds"]) if sms["after_pickups_per_s"] else "",
                  sms["max_sms_queue"], sms["max_mail_queue"], 100.0 * (sms["peer_cpu_share"] or 0)))
        if sms["backlog_seconds"]:
            print("    SMS link pauses: %d of %.0f ms or more between two submit_sm while SMS waited, %.1f s in all "
                  "(%.0f%% of that time)" % (sms["stalls"], STALL_S * 1000, sms["stalled_seconds"],
                                            100.0 * sms["stalled_seconds"] / sms["backlog_seconds"]))
        if ceiling:
            self.print_ceiling(ceiling, sms_rate)
        print("    duplicates at the peers: SMS parts accepted twice %d, e-mails with a Message-ID seen twice %d "
              "(resent_after_crash %d)" % (dups["sms_parts"], dups["emails"], dups["resent_after_crash"]))
        print("    CPU ms/lifecycle: " + ", ".join("%s %.2f" % kv for kv in f["cpu_ms_per_lifecycle"].items()))
        print("    relayed (sent/sent again): " + ", ".join("%s %d/%d" % (k, *v) for k, v in
                                                              f["relayed_sent_resent"].items()))
        print("    Redis commands/lifecycle executed: " + ", ".join("%s %.2f" % kv for kv in f["commands"].items()))
        self.print_closed_ticket("Redis memory of a closed ticket (MEMORY USAGE, mean of %d)" % mem["tickets"], mem)
        p = f["packed"]
        print("    packed (savctl archive pack): %d tickets, %.0f B of records into %.0f B each, used_memory %.0f B less "
              "per ticket" % (p["tickets"], p["payload_bytes"], p["value_bytes"], p["used_memory_freed_per_ticket"]))
        self.print_closed_ticket("Redis memory of a packed closed ticket", p["closed_ticket"])

    @staticmethod
    def print_closed_ticket(title, mem):
        print("    %s: " % title + "; ".join(
            "%s %.0f B in %.0f keys (%s)" % (cat, mem[cat]["bytes"], mem[cat]["keys"], ", ".join(
                "%s %s" % (kind, "%d" % size if keys == 1 else "%g x %.0f" % (keys, size / keys))
                for kind, (keys, size) in mem[cat]["kinds"].items()))
            for cat in ("ticket", "billing", "expiring")))

    def print_ceiling(self, c, sms_rate=None):
        print("    SMSC ceiling (sav-bench smpp, window %d, %d one-part submits): %.0f submit_sm_resp/s, round trip "
              "p50 %.1f ms p99 %.1f ms, peer CPU %.0f%% of a core%s%s" % (
                  c["window"], c["submitted"], c["resp_per_s"], c["rtt_p50_us"] / 1000.0, c["rtt_p99_us"] / 1000.0,
                  100.0 * c["peer_cpu_share"],
                  " (the Perl peer is the limit)" if c["peer_cpu_share"] >= 0.9 else "",
                  "; SAV's SMS rate is %.0f%% of it" % (100.0 * sms_rate / c["resp_per_s"]) if sms_rate else ""))

    def run(self):
        o = self.opts
        only = set(o.only.split(",")) if o.only else {"flood", "paced", "lifecycle", "smpp", "durability", "limits"}
        t0 = time.monotonic()
        if "limits" in only:
            lim = self.results["limits"] = self.limits()
            print("limits: ZeroMQ %.0f msgs/s ipc, %.0f tcp (200 B), round trip p50 %.0f us ipc; Redis SET %.0f/s "
                  "(1 client, everysec), %.0f/s (4 clients, always); FCALL of a one-write Function %.0f/s "
                  "(4 clients, always); a hop's Function (the command mix of event_apply) %.0f/s everysec, %.0f/s "
                  "always (4 clients, pipelines of 32)" % (
                      lim["zmq_ipc"]["msgs_per_s"], lim["zmq_tcp"]["msgs_per_s"], lim["zmq_ipc"]["rtt_p50_us"],
                      lim["redis_set_everysec_c1"], lim["redis_set_always_c4"], lim["redis_fcall_always_c4"],
                      lim["redis_hop_everysec_p32"], lim["redis_hop_always_p32"]))
        if "flood" in only:
            f = self.results["flood"] = self.run_flood("flood", "everysec", o.count)
            self.print_flood("1. flood", f)
        if "paced" in only:
            f = self.results["paced"] = self.run_flood("paced", "everysec", int(o.rate * o.paced_seconds), o.rate)
            self.print_flood("2. paced %d/s" % o.rate, f)
        if "lifecycle" in only:
            f = self.results["lifecycle"] = self.run_lifecycle("smpp" in only)
            self.print_lifecycle(f)
        elif "smpp" in only:
            c = self.results["smpp"] = self.run_smpp_alone()
            print("smpp:")
            self.print_ceiling(c)
        if "smpp" in only:
            d = self.results["sms_drain"] = self.run_sms_drain(o.sms)
            ceiling = (self.results.get("lifecycle") or {}).get("smpp_ceiling") or self.results.get("smpp")
            print("    SMS drain: %d SMS queued while the SMSC was away, then %d submit_sm in %.1f s: %.0f/s (%s), "
                  "%.2f notification CPU ms per submit_sm" % (
                      d["sms"], d["submits"], d["seconds"], d["per_s"],
                      "%.0f%% of the peer's ceiling" % (100.0 * d["per_s"] / ceiling["resp_per_s"]) if ceiling else "-",
                      d["notification_cpu_ms_per_submit"]))
        if "durability" in only:
            f = self.results["durability"] = self.run_flood("durability", "always", o.count)
            self.print_flood("4. durability", f)
            if "flood" in self.results:
                e, a = self.results["flood"]["tickets_per_s"], f["tickets_per_s"]
                print("    always / everysec: %.2f" % (a / e if e else 0))
        if "limits" in self.results:
            self.print_ratios()
        print("bench: %.0f s in all" % (time.monotonic() - t0))
        if o.json:
            with open(o.json, "w") as f:
                json.dump(self.results, f, indent=1)

    def print_ratios(self):
        lim = self.results["limits"]
        for name in ("flood", "durability"):
            f = self.results.get(name)
            if not f:
                continue
            rate = f["tickets_per_s"] or 0
            fcalls = sum(v for k, v in f["commands"].items() if k.startswith("fcall"))
            bound = lim["redis_hop_%s_p32" % f["fsync"]] / fcalls if fcalls else 0
            redis_ms = f["cpu_ms_per_ticket"].get("redis") or 0
            cpu_bound = 1000.0 / redis_ms if redis_ms else 0
            print("    %s: %.1f Function calls per ticket; at the rate Redis runs a hop's Function pipelined (%s) that "
                  "bounds the pipeline at %.0f tickets/s: SAV runs at %.0f%% of it. Redis spends %.3f CPU ms per "
                  "ticket: with a core to itself it could serve %.0f tickets/s: SAV runs at %.0f%% of that" % (
                      name, fcalls, f["fsync"], bound, 100.0 * rate / bound if bound else 0, redis_ms, cpu_bound,
                      100.0 * rate / cpu_bound if cpu_bound else 0))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "bin"))
    ap.add_argument("--count", type=int, default=100000)
    ap.add_argument("--tickets", help="a workload file (JSON lines) instead of generated tickets")
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--paced-seconds", type=int, default=30)
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--lifecycles", type=int, default=2000, help="complete lifecycles of scenario 3")
    ap.add_argument("--sms", type=int, default=5000, help="SMS queued for the drain of the smpp scenario")
    ap.add_argument("--lifecycle-window", type=int, default=50, help="lifecycles in flight in scenario 3")
    ap.add_argument("--only")
    ap.add_argument("--json", help="also write every figure to this file")
    opts = ap.parse_args()
    try:
        Bench(opts).run()
    finally:
        harness.kill_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
