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
"""

import collections
import json
import os
import re
import signal
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
SYSTEST_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, SYSTEST_DIR)
import fixtures  # noqa: E402
import harness  # noqa: E402
from fixtures import Result, TicketSpec  # noqa: E402
from harness import SERVICES  # noqa: E402


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
            pages[s] = parse_metrics(body)
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


TESTS = [
    ("health_and_metrics", test_health_and_metrics),
]


if __name__ == "__main__":
    sys.exit(fixtures.standalone(TESTS, __doc__))
