#!/usr/bin/python3
"""SAV system tests of scaling out (issue 9): several instances of each service against one Redis.

Usage: /usr/bin/python3 tests/system/ha_tests.py --bin build/bin [--only NAME[,NAME...]] [--keep]

- multi_instance: two instances of every service (SERVICE.endpoint lists both, each binds its own with
  SERVICE.bind, its own service.instance and HTTP listener). Requests spread over both intakes (each counts
  ticket.open in its /metrics); `savctl status` lists eight instances. Then, with both billings frozen so that
  diagnostics' messages wait for their acknowledgement, diagnostics-2 is SIGKILLed: the messages it held are
  taken over by diagnostics-1 (XAUTOCLAIM) within relay.takeover_ms plus a claim period, measured, and none is
  lost. Last, under a steady load, the second instance of intake, billing and notification is SIGKILLed: every
  ticket answered OK completes its pipeline exactly once on the survivors, nothing dead-lettered.
"""

import json
import os
import signal
import sys
import threading
import time
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
SYSTEST_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, SYSTEST_DIR)
import fixtures  # noqa: E402
import harness  # noqa: E402
from fault_tests import Requests, check_recovered  # noqa: E402
from fixtures import Result, TicketSpec  # noqa: E402
from harness import SERVICES  # noqa: E402

CLAIM_MS, TAKEOVER_MS = 500, 2000


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


TESTS = [
    ("multi_instance", test_multi_instance),
]


if __name__ == "__main__":
    sys.exit(fixtures.standalone(TESTS, __doc__))
