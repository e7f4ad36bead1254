#!/usr/bin/python3
"""SAV system tests of operating the services (issue 9): health, metrics, status and logs.

Usage: /usr/bin/python3 tests/system/ops_tests.py --bin build/bin [--only NAME[,NAME...]] [--keep]

- health_and_metrics: every service's HTTP listener (SERVICE.http_listen) answers /health/live, /health/ready
  and /health (JSON: service, instance, version, Redis reached, role, outbox, dead letters) with 200; after 30
  tickets, /metrics (Prometheus text format, parsed here) counts them (sav_messages_total{type="ticket.open"} at
  intake, the events at each next service, relayed messages, histogram buckets that never decrease and end at
  the count); with billing stopped, `savctl status` shows diagnostics' outbox holding messages with the age of
  the oldest; with Redis frozen, /health/ready says 503 while /health/live stays 200, and both come back; every
  log line is one JSON object naming the service and the instance.
- make_run: deploy/local/run.sh as `make run` and `make run-ha` start it (on ports and in directories of the
  test's own): the tour's first commands work, `savctl status` lists 4 (8) instances up, and SIGTERM stops
  everything it started (exit 0, nothing left listening). On the HA stack the Redis master is shut down: the
  sentinels name another and a ticket opens again (time measured).
"""

import collections
import json
import os
import re
import signal
import subprocess
import sys
import time

import redis

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
SYSTEST_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, SYSTEST_DIR)
import fixtures  # noqa: E402
import harness  # noqa: E402
from fixtures import Result, TicketSpec  # noqa: E402
from harness import SERVICES  # noqa: E402

LOCAL_CONF = os.path.join(harness.REPO_ROOT, "deploy", "local", "sav.conf")


def test_health_and_metrics(cl):
    res = Result()
    cl.start_all()
    for s in SERVICES:
        for path in ("/health/live", "/health/ready", "/health"):
            code, body = cl.http_get(s, path)
            res.check(code == 200, "%s %s: %d %r" % (s, path, code, body[:200]))
        code, body = cl.http_get(s, "/health")
        h = json.loads(body) if code == 200 else {}
        res.check(h.get("service") == s and h.get("instance") == "1" and h.get("redis_ok") is True and
                  h.get("redis_role") == "master" and h.get("status") == "up" and "outbox_depth" in h,
                  "%s /health: %r" % (s, h))
    code, _ = cl.http_get("intake", "/nothing")
    res.check(code == 404, "an unknown path: %d, want 404" % code)

    specs = fixtures.register(cl, res, [TicketSpec(i, "ops") for i in range(30)])
    exp = {}
    for s in specs:
        tid = fixtures.open_ticket(cl, res, *s.open_args())
        if tid:
            exp[tid] = s.expect()
    fixtures.wait_quiescent(cl, exp, 30)
    pages = {}
    for s in SERVICES:
        code, body = cl.http_get(s, "/metrics")
        res.check(code == 200, "%s /metrics: %d" % (s, code))
        try:
            pages[s] = harness.parse_metrics(body)
        except ValueError as e:
            res.check(False, "%s /metrics: %s" % (s, e))
            pages[s] = {}

    def value(s, name, **labels):
        return pages[s].get((name, tuple(sorted(labels.items()))), 0)
    opened = value("intake", "sav_messages_total", type="ticket.open")
    res.fig("ticket_open_counted", opened)
    res.check(opened >= len(exp), "intake counted %d ticket.open, %d were opened" % (opened, len(exp)))
    res.check(value("intake", "sav_relay_sent_total", dest="diagnostics") >= len(exp),
              "intake relayed %d to diagnostics" % value("intake", "sav_relay_sent_total", dest="diagnostics"))
    diagnosed = sum(1 for e in exp.values() if e.state == "in_diagnosis")
    res.check(value("diagnostics", "sav_messages_total", type="ticket.received") >= len(exp),
              "diagnostics counted %d ticket.received" % value("diagnostics", "sav_messages_total", type="ticket.received"))
    res.check(value("notification", "sav_messages_total", type="coverage.estimated") >= diagnosed,
              "notification counted %d coverage.estimated for %d diagnosed" % (
                  value("notification", "sav_messages_total", type="coverage.estimated"), diagnosed))
    buckets = sorted((float(dict(k[1])["le"].replace("+Inf", "inf")), v) for k, v in pages["intake"].items()
                     if k[0] == "sav_message_seconds_bucket" and dict(k[1]).get("type") == "ticket.open")
    counts = [v for _, v in buckets]
    res.check(counts and counts == sorted(counts) and counts[-1] == value("intake", "sav_message_seconds_count",
                                                                          type="ticket.open"),
              "ticket.open latency buckets %s do not rise to the count" % buckets)
    res.fig("ticket_open_p_le_10ms", next((v for le, v in buckets if le == 0.01), None))
    res.check(value("intake", "sav_redis_up") == 1, "intake's sav_redis_up is not 1")

    # Billing away: diagnostics' outbox holds messages, and status says how long the oldest has waited.
    cl.stop_service("billing")
    more = fixtures.register(cl, res, [TicketSpec(100 + i, "ops2") for i in range(3)])
    for s in more:
        fixtures.open_ticket(cl, res, *s.open_args())
    time.sleep(2.5)
    r = cl.savctl("--json", "status")
    rows = {row["name"]: row for row in json.loads(r.stdout)["services"]} if r.stdout else {}
    res.check(r.returncode == harness.EXIT_UNAVAILABLE and rows.get("billing", {}).get("status") == "down",
              "status with billing stopped: exit %d billing %r" % (r.returncode, rows.get("billing")))
    d = rows.get("diagnostics", {})
    res.check(d.get("outbox_depth", 0) >= 1 and (d.get("oldest_pending_ms") or 0) >= 1000 and
              d.get("redis_role") == "master" and d.get("instance") == "1",
              "diagnostics' status with billing away: %r" % d)
    res.fig("diagnostics_waiting", "%s messages, oldest %.1f s" % (d.get("outbox_depth"),
                                                                   (d.get("oldest_pending_ms") or 0) / 1000))
    text = cl.savctl("status").stdout
    res.check(re.search(r"^diagnostics\s+1\s+up", text, re.M) and re.search(r"^billing\s+-\s+down", text, re.M),
              "savctl status text:\n%s" % text)
    cl.start_service("billing")
    cl.wait_service("billing")

    # Redis frozen: not ready, still alive; then ready again.
    os.kill(cl.redis_proc.pid, signal.SIGSTOP)
    try:
        became = harness.wait_until(lambda: cl.http_get("intake", "/health/ready")[0] == 503, 10, 0.2)
        res.check(became, "intake /health/ready stayed %d with Redis frozen" % cl.http_get("intake", "/health/ready")[0])
        res.check(cl.http_get("intake", "/health/live")[0] == 200, "intake /health/live failed with Redis frozen")
        code, body = cl.http_get("intake", "/health")
        res.check(code == 503 and '"status": "degraded"' in body, "intake /health with Redis frozen: %d %s" % (
            code, body[:120]))
    finally:
        os.kill(cl.redis_proc.pid, signal.SIGCONT)
    res.check(harness.wait_until(lambda: all(cl.http_get(s, "/health/ready")[0] == 200 for s in SERVICES), 15, 0.2),
              "not every service ready again after Redis came back")

    # Logs: one JSON object per line, with the service and the instance.
    bad = collections.Counter()
    lines = 0
    for s in SERVICES:
        with open(os.path.join(cl.dir, s + ".log"), errors="replace") as f:
            for line in f:
                if line.startswith("===="):
                    continue
                lines += 1
                try:
                    o = json.loads(line)
                    if o.get("service") != s or o.get("instance") != "1" or not o.get("level") or not o.get("ts"):
                        bad[s] += 1
                except ValueError:
                    bad[s] += 1
    res.fig("log_lines", lines)
    res.check(lines > 0 and not bad, "log lines that are not a JSON object with service and instance: %s" % dict(bad))
    return res


def run_script(cl, res, ha):
    """Starts deploy/local/run.sh (make run, or make run-ha with ha) on ports of its own, its var/ and keys in the
    test's directory; returns (process, savctl environment) once it says SAV is running, or (process, None)."""
    name = "run-ha" if ha else "run"
    # run.sh puts the replicas 1 and 2 ports above Redis, the sentinels 20000 above, and the second instance of
    # every service (its endpoint and its health listener) 20 above the first.
    redis_port = harness.free_port_series((0, 1, 2, 20000, 20001, 20002))
    env = {"SAV_BIN": cl.bin_dir, "SAV_VAR": os.path.join(cl.dir, name), "SAV_REDIS_PORT": str(redis_port),
           "SAV_SECURITY_KEYS_DIR": os.path.join(cl.dir, name, "keys"),
           "SAV_SECURITY_CLIENTS": os.path.join(cl.dir, name, "keys", "clients"), "SAV_CONFIG": LOCAL_CONF}
    for s in SERVICES:
        env["SAV_%s_ENDPOINT" % s.upper()] = "tcp://127.0.0.1:%d" % harness.free_port_series((0, 20))
        env["SAV_%s_HTTP_LISTEN" % s.upper()] = "127.0.0.1:%d" % harness.free_port_series((0, 20))
    p = cl._spawn(["/bin/sh", os.path.join(harness.REPO_ROOT, "deploy", "local", "run.sh")] + (["--ha"] if ha else []),
                  name + ".log", env)
    log = os.path.join(cl.dir, name + ".log")
    up = harness.wait_until(lambda: p.poll() is not None or "SAV is running" in open(log).read(), 90, 0.2)
    if not res.check(up and p.poll() is None, "%s did not say SAV is running: %s" % (name, harness.tail_file(log, 5))):
        return p, None
    if ha:
        with open(os.path.join(env["SAV_VAR"], "ha.env")) as f:
            env.update(line.split(None, 1)[1].strip().split("=", 1) for line in f if line.startswith("export "))
    return p, env


def local_savctl(cl, env, *args):
    return subprocess.run([cl.binary("savctl"), "--json"] + list(args), capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, env=dict(os.environ, **env))


def stop_script(cl, res, p, env, name):
    """SIGTERM to run.sh: it stops everything it started and exits 0; nothing it started still listens."""
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(30)
    except subprocess.TimeoutExpired:
        rc = None
    res.check(rc == 0, "%s exited %s on SIGTERM, want 0" % (name, rc))
    listening = [e for k, e in env.items() if k.endswith("_ENDPOINT") for e in e.split(",")
                 if harness.port_open(int(e.rsplit(":", 1)[1]))]
    res.check(not listening and not harness.port_open(int(env["SAV_REDIS_PORT"])),
              "%s left processes listening after its stop: %s" % (name, listening))
    return rc


def open_one(cl, res, env, serial, rid, patience=0):
    """Adds a product to C-000001 and opens a ticket for it, the open sent again (same request id) while the
    answer is "unavailable" for up to patience seconds; returns the ticket id or None."""
    deadline = time.monotonic() + patience
    for args in (["product", "add", "--serial", serial, "--model", "WM-7000", "--customer", "C-000001",
                  "--delivered", "2025-06-14", "--request-id", rid + "-p"],
                 ["ticket", "open", "--customer", "C-000001", "--serial", serial, "--kind", "repair", "--symptom",
                  "ne chauffe plus", "--fault", "E21", "--request-id", rid]):
        while True:
            r = local_savctl(cl, env, *args)
            if r.returncode != 4 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        if not res.check(r.returncode == 0, "%s %s: exit %d %s" % (" ".join(args[:2]), serial, r.returncode,
                                                                  r.stderr.strip())):
            return None
    return json.loads(r.stdout)["id"]


def test_make_run(cl):
    res = Result()
    # make run: one Redis, the four services; the tour's first commands work; SIGTERM stops everything.
    p, env = run_script(cl, res, ha=False)
    if not env:
        return res
    r = local_savctl(cl, env, "customer", "add", "--name", "Jeanne Martin", "--phone", "06 12 34 56 78")
    res.check(r.returncode == 0, "customer add: exit %d %s" % (r.returncode, r.stderr.strip()))
    res.fig("make_run_ticket", open_one(cl, res, env, "SN-1", "run-1"))
    status = json.loads(local_savctl(cl, env, "status").stdout or "{}").get("services", [])
    res.fig("make_run_instances", len(status))
    res.check(len(status) == 4 and all(s.get("status") == "up" for s in status), "make run: savctl status %s" % status)
    stop_script(cl, res, p, env, "run.sh")

    # make run-ha: three Redis, three sentinels, eight instances; the master stopped, writes go on elsewhere.
    p, env = run_script(cl, res, ha=True)
    if not env:
        return res
    local_savctl(cl, env, "customer", "add", "--name", "Jeanne Martin", "--phone", "06 12 34 56 78")
    status = json.loads(local_savctl(cl, env, "status").stdout or "{}").get("services", [])
    res.fig("make_run_ha_instances", len(status))
    res.check(len(status) == 8 and all(s.get("status") == "up" for s in status), "make run-ha: savctl status %s" % status)
    res.check(open_one(cl, res, env, "SN-1", "ha-1") is not None, "no ticket opened on the HA stack")
    port = int(env["SAV_REDIS_PORT"])
    admin = open(os.path.join(env["SAV_VAR"], "secrets", "redis-admin")).read().strip()
    try:
        redis.Redis(port=port, password=admin, socket_timeout=5).shutdown(nosave=True)
    except redis.exceptions.ConnectionError:
        pass  # the connection closes as the server goes
    t0 = time.monotonic()
    tid = open_one(cl, res, env, "SN-2", "ha-2", patience=60)
    res.fig("make_run_ha_writes_back_s", round(time.monotonic() - t0, 1))
    sentinel_password = open(os.path.join(env["SAV_VAR"], "secrets", "redis-sentinel")).read().strip()
    master = redis.Redis(port=port + 20000, password=sentinel_password, decode_responses=True).execute_command(
        "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "sav")
    res.fig("make_run_ha_master", "%d->%s" % (port, master[1]))
    res.check(tid is not None and int(master[1]) != port, "after the master stopped: ticket %s, master %s" % (
        tid, master))
    stop_script(cl, res, p, env, "run.sh --ha")
    return res


TESTS = [
    ("health_and_metrics", test_health_and_metrics),
    ("make_run", test_make_run),
]


if __name__ == "__main__":
    sys.exit(fixtures.standalone(TESTS, __doc__))
