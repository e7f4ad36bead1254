#!/usr/bin/python3
"""SAV system test under valgrind memcheck (issue 7): the four services of the normal build (build/bin: valgrind
cannot run the AddressSanitizer build the other system tests use) run under
  valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
through the main paths: customers, products, a free repair and a chargeable one (pre-diagnosis, coverage,
verdict, quote, acceptance, parts, repair, invoice, payment, pickup), a refused quote, a complaint, parts stock,
the notification list, with e-mails really sent to an SMTP server and SMS to an SMSC (the sender threads and
delivery receipts), one malformed frame sent to every service, then a SIGTERM: every service must exit 0 (no
invalid read or write, no use of uninitialised memory, no definite or indirect leak) and no log may hold a
valgrind report.

Usage: /usr/bin/python3 tests/system/valgrind_tests.py --bin build/bin [--only NAME] [--keep]
(with --bin build/asan/bin, as run.py passes it, the normal build next to it is used).
"""

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
from billing_tests import Shop, stock_up, sv  # noqa: E402
from fixtures import Result  # noqa: E402
from notification_tests import SmtpPeer  # noqa: E402
from sms_tests import SmscPeer  # noqa: E402

VALGRIND = ["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect", "--show-leak-kinds=definite,indirect", "--num-callers=25",
            "--track-origins=yes"]


def normal_build(bin_dir):
    """build/bin for build/bin or build/asan/bin."""
    bin_dir = os.path.abspath(bin_dir)
    if os.path.basename(os.path.dirname(bin_dir)) == "asan":
        return os.path.join(os.path.dirname(os.path.dirname(bin_dir)), "bin")
    return bin_dir


def test_valgrind_services(cl):
    res = Result()
    bin_dir = normal_build(cl.bin_dir)
    smtp = SmtpPeer(cl, os.path.join(cl.dir, "smtp")).start()
    smsc = SmscPeer(cl, "vg")
    cl.write_config(cl.config, extra={
        "notification": [("smtp_url", "smtp://127.0.0.1:%d" % smtp.port), ("mail_domain", "sav-test.example"),
                         ("smpp_host", "127.0.0.1"), ("smpp_port", str(smsc.port)), ("smpp_password", cl.secret("smpp", "secret")),
                         ("sms_quiet_hours", "off")],
        # Everything runs 20 to 50 times slower under valgrind: no resend for a slow answer.
        "relay": [("ack_timeout_ms", "5000"), ("backoff_max_ms", "10000")],
        "client": [("timeout_ms", "20000"), ("attempts", "2")]})
    try:
        smsc.start("--receipts")
        cl.start_redis()
        for s in harness.SERVICES:
            cl.procs[s] = cl._spawn(VALGRIND + [os.path.join(bin_dir, "sav-" + s), "--config", cl.config], s + ".log")
        if not res.check(harness.wait_until(lambda: cl.savctl("ping").returncode == 0, 90, 0.5),
                         "the services did not answer under valgrind within 90 s"):
            return res
        stock_up(cl, res, qty=5)
        shop = Shop(cl, res, "vg")
        cid = (sv(cl, res, "customer", "add", "--name", "Élodie Valgrind", "--phone", "06 11 22 33 44", "--email",
                  "elodie@example.fr") or {}).get("id")
        if not res.check(cid, "customer add failed"):
            return res
        free = shop.ticket(cid, delivered=fixtures.today(-100).isoformat())
        sv(cl, res, "diagnose", free, "--cause", "manufacturing", "--action", "repair", "--labour", "30")
        sv(cl, res, "repair", "start", free)
        sv(cl, res, "repair", "done", free, "--note", "résistance remplacée")
        sv(cl, res, "ticket", "pickup", free)
        paid, inv = shop.invoiced(cid)
        total = (sv(cl, res, "invoice", "show", inv) or {}).get("total_cents")
        sv(cl, res, "payment", "record", inv, "--amount", total, "--method", "card")
        sv(cl, res, "ticket", "pickup", paid)
        refused = shop.ticket(cid)
        shop.diagnose(refused)
        sv(cl, res, "quote", "refuse", refused, "--reason", "trop cher")
        sv(cl, res, "complaint", "open", paid, "--reason", "damaged", "--text", "Rayure sur la porte")
        sv(cl, res, "parts", "stock", "PAR-01")
        sv(cl, res, "notification", "list", "--limit", "100")
        sv(cl, res, "ticket", "show", paid)
        # A malformed frame to each service: refused without a leak.
        import zmq
        ctx = zmq.Context.instance()
        for s in harness.SERVICES:
            sock = cl.dealer(ctx, s)
            sock.send_multipart([b"", b"\x0a\xff\xff\xff\xff\x0fgarbage"])
            sock.poll(20000)
            sock.close()
        harness.wait_until(lambda: len(smtp.messages()) >= 8 and len(smsc.submits()) >= 8, 60, 0.5)
        time.sleep(2)
        res.fig("emails", len(smtp.messages()))
        res.fig("sms_submits", len(smsc.submits()))
        res.check(len(smtp.messages()) >= 8 and smsc.submits(), "the senders did not really send: paths not covered")
        codes = {}
        for s in harness.SERVICES:
            p = cl.procs[s]
            p.sav_stopped_by_harness = True
            p.send_signal(signal.SIGTERM)
        for s in harness.SERVICES:
            try:
                codes[s] = cl.procs[s].wait(120)
            except Exception:
                codes[s] = "timeout"
        res.fig("exit_codes", codes)
        res.check(all(c == 0 for c in codes.values()), "services under valgrind exited %s (99: memcheck found an "
                  "error or a leak)" % codes)
        for s in harness.SERVICES:
            with open(os.path.join(cl.dir, s + ".log"), errors="replace") as f:
                log = f.read()
            reports = re.findall(r"^==\d+== .*$", log, re.M)
            res.check(not reports, "valgrind reports in sav-%s's log: %s" % (s, "\n".join(reports[:30])))
        return res
    finally:
        smtp.stop()
        smsc.stop()


TESTS = [("valgrind_services", test_valgrind_services)]


if __name__ == "__main__":
    sys.exit(fixtures.standalone(TESTS, __doc__))
