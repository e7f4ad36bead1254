#!/usr/bin/python3
"""make bench: SAV's throughput and latency, measured on this machine (issue 8). Starts its own redis-server and
the four services (tests/system/harness.py, free loopback ports), drives them with the C load generator
build/bin/sav-bench, and prints per scenario one summary line and a short table:

  1. flood      N tickets opened as fast as the generator can (window of requests in flight), each going intake
                -> diagnostics (pre-diagnosis) -> billing (coverage estimate) -> notification (messages rendered
                and recorded); AOF appendfsync everysec. Tickets/s end to end (first request to last notification
                recorded), latency per hop and end to end (p50, p99, p99.9), Redis commands per ticket (INFO
                commandstats: all, and those the services sent), CPU ms per ticket per process and in all, peak RSS
                per service, Redis memory per ticket.
  2. paced      the same at a fixed rate (default 1,000 tickets/s) for 30 s: the latencies of a system that keeps up.
  4. durability scenario 1 again with appendfsync always, side by side with everysec.
  5. limits     in the same run: redis-benchmark (SET and FCALL of a Function, as many clients as services) and raw
                ZeroMQ (sav-bench zmq), so that each figure is also shown as a share of the limit it is bound by.
Scenario 3 (full lifecycles with SMS and e-mail sent to the test peers) is not built yet (see docs/PERFORMANCE.md).

Usage: /usr/bin/python3 tools/bench/bench.py --bin build/bin [--count N] [--tickets FILE] [--rate R]
       [--paced-seconds S] [--window W] [--only flood,paced,durability,limits] [--json FILE]
--tickets FILE replays a workload (JSON lines, format in tools/bench/workload.h and docs/PERFORMANCE.md).
"""

import argparse
import collections
import json
import os
import resource
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "system"))
sys.dont_write_bytecode = True
import harness  # noqa: E402

HOPS = ("open", "intake>diagnostics", "diagnostics>billing", "billing>notification", "end_to_end")
CLK_TCK = os.sysconf("SC_CLK_TCK")


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

    def snapshot(self, cl):
        r = cl.redis()
        stats = r.info("commandstats")
        calls = {k[len("cmdstat_"):]: v["calls"] for k, v in stats.items()}
        return {"cpu": {n: proc_cpu_ms(p) for n, p in self.pids(cl).items()}, "machine": machine_cpu_ms(),
                "calls": calls, "memory": r.info("memory")["used_memory"],
                "children": resource.getrusage(resource.RUSAGE_CHILDREN), "t": time.monotonic()}

    # -- one load

    def load(self, cl, label, count, rate=0):
        """Runs sav-bench: registers the customers and products, then (between two snapshots) opens the tickets.
        Returns (its phase lines, the CSV of tickets, snapshot before, snapshot after the notifications)."""
        out = os.path.join(cl.dir, "tickets-%s.csv" % label)
        argv = [cl.binary("sav-bench"), "--config", cl.config, "load", "--pause", "--window", str(self.opts.window),
                "--run", "%s%d" % (label[:4], int(time.time()) % 100000), "--out", out]
        argv += ["--tickets", self.opts.tickets] if self.opts.tickets else ["--count", str(count)]
        if rate:
            argv += ["--rate", str(rate)]
        phases, before = {}, None
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for line in proc.stdout:
            ph = json.loads(line)
            phases[ph["phase"]] = ph
            if ph["phase"] == "ready":
                before = self.snapshot(cl)
                before["services"] = self.service_counts(cl)
                proc.stdin.write("go\n")
                proc.stdin.flush()
        err = proc.stderr.read()
        if proc.wait() != 0 or before is None or "tickets" not in phases:
            raise harness.HarnessError("sav-bench failed: %s" % err.strip()[-500:])
        rows = [line.rstrip("\n").split(",") for line in open(out)]
        self.wait_notified(cl)
        after = self.snapshot(cl)
        after["services"] = self.service_counts(cl)
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
        calls = {k: after["calls"].get(k, 0) - before["calls"].get(k, 0) for k in after["calls"]}
        calls = {k: v for k, v in calls.items() if v > 0 and not k.startswith("info")}
        sent = {s: [a - b for a, b in zip(v, before["services"]["redis"].get(s, [0, 0]))]
                for s, v in after["services"]["redis"].items()}
        relays = {k: [a - b for a, b in zip(v, before["services"]["relays"].get(k, [0, 0]))]
                  for k, v in after["services"]["relays"].items()}
        cpu = {k: (after["cpu"][k] - before["cpu"].get(k, 0)) / n for k in after["cpu"]}
        gen = after["children"].ru_utime + after["children"].ru_stime - before["children"].ru_utime - \
            before["children"].ru_stime
        cpu["generator"] = gen * 1000.0 / n
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
            subprocess.run(["redis-cli", "-p", str(port), "FUNCTION", "LOAD", "REPLACE",
                            "#!lua name=bench\nredis.register_function('touch', function(k, a) "
                            "redis.call('HSET', k[1], 'at', a[1]) return 1 end)"], check=True, capture_output=True)
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

    def run(self):
        o = self.opts
        only = set(o.only.split(",")) if o.only else {"flood", "paced", "durability", "limits"}
        t0 = time.monotonic()
        if "limits" in only:
            lim = self.results["limits"] = self.limits()
            print("limits: ZeroMQ %.0f msgs/s ipc, %.0f tcp (200 B), round trip p50 %.0f us ipc; Redis SET %.0f/s "
                  "(1 client, everysec), %.0f/s (4 clients, always); FCALL of a one-write Function %.0f/s "
                  "(4 clients, always)" % (lim["zmq_ipc"]["msgs_per_s"], lim["zmq_tcp"]["msgs_per_s"],
                                           lim["zmq_ipc"]["rtt_p50_us"], lim["redis_set_everysec_c1"],
                                           lim["redis_set_always_c4"], lim["redis_fcall_always_c4"]))
        if "flood" in only:
            f = self.results["flood"] = self.run_flood("flood", "everysec", o.count)
            self.print_flood("1. flood", f)
        if "paced" in only:
            f = self.results["paced"] = self.run_flood("paced", "everysec", int(o.rate * o.paced_seconds), o.rate)
            self.print_flood("2. paced %d/s" % o.rate, f)
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
            fcalls = sum(v for k, v in f["commands"].items() if k.startswith("fcall"))
            bound = lim["redis_fcall_%s_c4" % f["fsync"]] / fcalls if fcalls else 0
            print("    %s: %.1f Function calls per ticket; at the measured rate of 4 clients' FCALLs (%s) that "
                  "bounds the pipeline at %.0f tickets/s: SAV runs at %.0f%% of it" % (
                      name, fcalls, f["fsync"], bound, 100.0 * (f["tickets_per_s"] or 0) / bound if bound else 0))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "bin"))
    ap.add_argument("--count", type=int, default=100000)
    ap.add_argument("--tickets", help="a workload file (JSON lines) instead of generated tickets")
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--paced-seconds", type=int, default=30)
    ap.add_argument("--window", type=int, default=512)
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
