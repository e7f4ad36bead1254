#!/usr/bin/python3
"""SAV system tests of the second SMS transport: an HTTP gateway (services/notification/smsgw.c, with the
sms_handover / sms_report Functions of common/redis/sav.lua), here Debian's Kannel 1.4.5 (bearerbox + smsbox)
between sav-notification and the test SMSC (tests/system/smsc_peer.pl, Net::SMPP). Each test starts, on free
127.0.0.1 ports, the peer, Kannel with a config written here (the SMSC as a transceiver, a sendsms user, the
customers' replies to sav-notification's /sms/mo) and the services with notification.sms_transport = http.
The assertions read the peer's log of PDUs (what Kannel made of our requests) and Redis, never the client's
internals.

Usage: /usr/bin/python3 tests/system/sms_http_tests.py --bin build/bin [--only NAME[,NAME...]] [--keep]

What is checked:
- kannel_delivery: 10 fr/en customers, 3 of them billable, three centres, a French complaint: every SMS ends
  delivered after one hand-over (attempts 1, reports 8 then 1 recorded); every submit_sm Kannel made is read
  like the SMPP transport's (sms_tests.Traffic): data_coding 0 exactly when the body is all GSM 03.38, the
  septets decoding back to the body, UCS-2 without BOM, a concatenation UDH on every part of a long message
  with as many parts as the notification's sms_parts, one accepted submit per part; each recipient's SMS reach
  the SMSC in the order they were recorded; `notification list --status delivered` agrees.
- kannel_errors: --fail-dest for one customer and --throttle 3: the refused customer's SMS fail with the
  SMSC's reason (0x0B), handed over once each; the throttled parts are Kannel's to retry (still one hand-over
  each, all delivered), and each recipient's order holds at the SMSC.
- kannel_outage: the gateway down: SMS stay queued, attempts not used up; the gateway up with another password
  for our user: 403, still queued (attempts not used up), the refusal logged; the right password: all
  delivered. Forged reports (wrong token, unknown id, bad type) and a reply without the key are refused with
  403/404/400 and change nothing.
- kannel_stop: customers' STOP replies (international with +, without +, and national 06...) reach /sms/mo
  through Kannel: consent_marketing 0 for those three, 1 for a fourth; consent_sms unchanged.
- kannel_crash: 100 SMS handed over while sav-notification is SIGKILLed five times (the SMSC answering 50 ms
  late, reports arriving while the service is down retried by Kannel): every SMS delivered; SMS that reached
  the SMSC twice (the documented duplicate window) are counted and each has resent_after_crash >= 1.
Every test ends as in run.py: no service died on its own, all exit 0 on SIGTERM, no sanitizer report in a log.
"""

import collections
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
SYSTEST_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, SYSTEST_DIR)
import fixtures  # noqa: E402
import harness  # noqa: E402
from fixtures import Result, pmap  # noqa: E402
from harness import HarnessError  # noqa: E402
from sms_tests import (SmscPeer, Traffic, Unit, check_statuses, list_status, notif_hashes, notif_order,  # noqa: E402
                       open_for, register, repair_flow, run, sms_notifs, stop_peers, wait_recorded, wait_sms)

BEARERBOX = "/usr/sbin/bearerbox"
SMSBOX = "/usr/sbin/smsbox"
KANNEL_USER = "sav"
KANNEL_PASSWORD = "kannel-secret"
CALLBACK_KEY = "callback-key-0123456789"
URL_TEMPLATE = ("http://127.0.0.1:%d/cgi-bin/sendsms?username={username}&password={password}&from={from}&to={to}"
                "&text={text}&charset={charset}&coding={coding}&dlr-mask={dlr_mask}&dlr-url={dlr_url}")


class Kannel:
    """bearerbox and smsbox on free ports, bound to the SMSC peer as a transceiver; logs in the cluster's dir."""

    def __init__(self, cl, smsc_port, callback_port, name="kannel", password=KANNEL_PASSWORD):
        self.cl, self.name, self.smsc_port, self.callback_port = cl, name, smsc_port, callback_port
        self.admin_port, self.box_port, self.sendsms_port = harness.free_ports(3)
        self.password = password
        self.dir = os.path.join(cl.dir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.conf = os.path.join(self.dir, "kannel.conf")
        self.procs = []

    def config(self):
        d = self.dir
        return "\n".join([
            "group = core", "admin-port = %d" % self.admin_port, "admin-password = admin-secret",
            "smsbox-port = %d" % self.box_port, 'log-file = "%s/bearerbox.log"' % d, "log-level = 1",
            'access-log = "%s/access.log"' % d, "store-type = file", 'store-location = "%s/store"' % d,
            "dlr-storage = internal", "sms-resend-freq = 1", "sms-resend-retry = -1", "",
            "group = smsc", "smsc = smpp", "smsc-id = peer", "host = 127.0.0.1", "port = %d" % self.smsc_port,
            "transceiver-mode = true", "smsc-username = sav", "smsc-password = secret", 'system-type = ""',
            "source-addr-ton = 5", "source-addr-npi = 0", "dest-addr-ton = 1", "dest-addr-npi = 1",
            "enquire-link-interval = 30", "reconnect-delay = 1", "max-pending-submits = 10", "msg-id-type = 0x01",
            "",
            "group = smsbox", "bearerbox-host = 127.0.0.1", "bearerbox-port = %d" % self.box_port,
            "sendsms-port = %d" % self.sendsms_port, 'log-file = "%s/smsbox.log"' % d, "log-level = 1",
            "mo-recode = true", "http-request-retry = 30", "http-queue-delay = 1", "",
            "group = sendsms-user", "username = %s" % KANNEL_USER, "password = %s" % self.password,
            "concatenation = true", "max-messages = 10", "",
            "group = sms-service", "keyword = default",
            'get-url = "http://127.0.0.1:%d/sms/mo?key=%s&from=%%p&text=%%a"' % (self.callback_port, CALLBACK_KEY),
            "max-messages = 0", "catch-all = true", ""])

    def start(self, timeout=15):
        with open(self.conf, "w") as f:
            f.write(self.config())
        for p in ("bearerbox.log", "smsbox.log", "stderr.log"):
            path = os.path.join(self.dir, p)
            if path not in self.cl._logs:
                self.cl._logs.append(path)
        for binary, port in ((BEARERBOX, self.box_port), (SMSBOX, self.sendsms_port)):
            argv = [binary, self.conf]
            if harness.SETPRIV and threading.current_thread() is threading.main_thread():
                argv = [harness.SETPRIV, "--pdeathsig", "KILL", "--"] + argv
            with open(os.path.join(self.dir, "stderr.log"), "ab") as f:
                p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                     start_new_session=True)
            harness._register(p)
            self.procs.append(p)
            if not harness.wait_until(lambda: harness.port_open(port) or p.poll() is not None, timeout, 0.05) \
                    or p.poll() is not None:
                self.stop()
                raise HarnessError("%s did not listen on %d:\n%s" % (binary, port, harness.tail_file(
                    os.path.join(self.dir, "stderr.log"))))
        # Kannel 1.4.5's smsbox serves sendsms before its link to bearerbox is up, and panics on a request in that
        # window (gwlib/conn.c lock_out: conn != NULL): up means bearerbox lists the smsbox among its boxes.
        if not harness.wait_until(self.smsbox_connected, timeout, 0.05):
            self.stop()
            raise HarnessError("smsbox did not connect to bearerbox within %ss" % timeout)
        return self

    def smsbox_connected(self):
        try:
            url = "http://127.0.0.1:%d/status.txt?password=admin-secret" % self.admin_port
            with urllib.request.urlopen(url, timeout=2) as r:
                return "smsbox:" in r.read().decode("utf-8", "replace")
        except OSError:
            return False

    def stop(self):
        for p in reversed(self.procs):
            harness.stop_process(p, signal.SIGTERM, 10)
        self.procs = []

    def url(self):
        return URL_TEMPLATE % self.sendsms_port


def http_config(cl, kannel, **keys):
    """Rewrites the cluster's config: SMS through Kannel's sendsms, reports to our listener, short delays."""
    kv = collections.OrderedDict([
        ("sms_transport", "http"), ("http_sms_url", kannel.url()), ("http_sms_username", KANNEL_USER),
        ("http_sms_password", cl.secret("gateway", KANNEL_PASSWORD)), ("http_listen", "127.0.0.1:%d" % kannel.callback_port),
        ("http_callback_key", cl.secret("callback", CALLBACK_KEY)), ("http_sms_timeout_ms", 3000), ("sms_retry_max_ms", 1000),
        ("sms_quiet_hours", "off")])
    kv.update(keys)
    cl.write_config(cl.config, extra={"notification": [(k, str(v)) for k, v in kv.items()]})


def get(url):
    """(HTTP status, body) of a GET; status 0 when nobody answered."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except OSError as e:
        return 0, str(e)


def setup(cl, peer_args=(), start_kannel=True, **config):
    """The SMSC peer (started with peer_args), Kannel (started unless told), the services; returns (peer, kannel)."""
    peer = SmscPeer(cl, "gw").start(*peer_args)
    kannel = Kannel(cl, peer.port, harness.free_ports(1)[0])
    if start_kannel:
        kannel.start()
    http_config(cl, kannel, **config)
    cl.start_all()
    return peer, kannel


def check_order(res, cl, notifs, tr):
    """Each recipient's SMS reached the SMSC (first submit_sm of each) in the order they were recorded."""
    subs = [r for r in tr.records if r.get("cmd") == "submit_sm" and r.get("dir") == "in" and r.get("_part")]
    order = notif_order(cl, notifs)
    broken = []
    for rc, ids in order.items():
        rank = {nid: k for k, nid in enumerate(ids)}
        firsts = []
        for r in subs:
            nid = r["_part"][0]
            if nid in rank and rank[nid] not in firsts:
                firsts.append(rank[nid])
        if firsts != sorted(firsts):
            broken.append((rc, firsts))
    res.check(not broken, "a recipient's SMS reached the SMSC out of order (ranks in notification order): %s" %
              broken[:3])
    return "%d/%d" % (len(order) - len(broken), len(order))


def check_handed_once(res, notifs, label=""):
    many = {k: v.get("attempts") for k, v in notifs.items() if v.get("attempts") != "1"}
    res.check(not many, "%s%d SMS handed to the gateway more than once: %s" % (label, len(many),
                                                                             sorted(many.items())[:4]))


# ---------------------------------------------------------------- 1. kannel_delivery

def test_kannel_delivery(cl):
    res = Result()
    peer = kannel = None
    try:
        peer, kannel = setup(cl, ("--receipts",))
        centres = ["PAR-01", "REP-BDX-07", "LYO-01"]
        units = [Unit(i, "fr" if i % 2 == 0 else "en", old=i in (2, 3, 8), centre=centres[i % 3]) for i in range(10)]
        t0 = time.monotonic()
        if not res.check(register(cl, res, units), "registration failed"):
            return res
        pmap(lambda u: repair_flow(cl, res, u), units)
        run(cl, res, "complaint", "open", units[0].tid, "--reason", "damaged", "--text", "Rayure sur la porte")
        tids = [u.tid for u in units]
        notifs = wait_sms(cl, tids, timeout=60)
        res.fig("seconds", round(time.monotonic() - t0, 1))
        res.fig("sms", len(notifs))
        res.fig("status", dict(check_statuses(res, notifs, "delivered")))
        codings = collections.Counter((v.get("sms_coding"), v.get("sms_parts")) for v in notifs.values())
        res.fig("coding_parts", {"%s/%s" % k: n for k, n in sorted(codings.items())})
        res.check(("ucs2", "2") in codings and ("gsm7", "2") in codings and ("gsm7", "1") in codings,
                  "the mix lacks a 2-part UCS-2, a 2-part GSM-7 or a 1-part GSM-7 SMS: %s" % dict(codings))
        check_handed_once(res, notifs)
        for nid, n in notifs.items():
            res.check(n.get("report:8") and n.get("report:1") and (n.get("sent_at") or "").isdigit()
                      and n.get("dlr_token") and n.get("resent_after_crash") in (None, "0"),
                      "%s: reports 8 %r and 1 %r, sent_at %r, token %r, resent_after_crash %r: want both reports, "
                      "a time, a token, none" % (nid, n.get("report:8"), n.get("report:1"), n.get("sent_at"),
                                                 n.get("dlr_token"), n.get("resent_after_crash")))
        tr = Traffic(res, notifs, [peer], gateway=True)
        tr.exactly_once(list(notifs))
        res.fig("long_messages", tr.check_refs())
        res.fig("packing", dict(tr.packing))
        res.fig("submits", len(peer.submits()))
        res.fig("recipients_in_order", check_order(res, cl, notifs, tr))
        tr.receipts_answered()
        listed = list_status(cl, res, "delivered")
        res.check(set(notifs) <= set(listed), "notification list --status delivered lacks %s" % (
            sorted(set(notifs) - set(listed))[:4]))
        shown = run(cl, res, "ticket", "show", units[0].tid) or {}
        states = {n.get("id"): n.get("status") for n in shown.get("notifications") or []}
        res.check(any(states.get(k) == "delivered" for k in notifs if k.startswith(units[0].tid)),
                  "ticket show %s does not show the delivered SMS: %s" % (units[0].tid, states))
        return res
    finally:
        stop_peers(peer)
        if kannel:
            kannel.stop()


# ---------------------------------------------------------------- 2. kannel_errors

def test_kannel_errors(cl):
    res = Result()
    peer = kannel = None
    try:
        units = [Unit(100 + i, "fr" if i % 2 == 0 else "en") for i in range(6)]
        refused = units[5]
        peer, kannel = setup(cl, ("--throttle", 3, "--fail-dest", refused.e164, "--receipts"))
        if not res.check(register(cl, res, units), "registration failed"):
            return res
        pmap(lambda u: repair_flow(cl, res, u), units)
        tids = [u.tid for u in units]
        t0 = time.monotonic()
        notifs = wait_sms(cl, tids, timeout=60, count=24)
        res.fig("seconds", round(time.monotonic() - t0, 1))
        ok = {k: v for k, v in notifs.items() if v.get("recipient") != refused.e164}
        bad = {k: v for k, v in notifs.items() if v.get("recipient") == refused.e164}
        res.fig("status", dict(collections.Counter(v.get("status") for v in notifs.values())))
        check_statuses(res, ok, "delivered")
        check_statuses(res, bad, "failed", "refused number: ")
        for nid, n in bad.items():
            # Kannel reports a refused concatenated message without the SMSC's answer (its split handling
            # passes none): only the single-part ones can name 0x0B.
            want = r"0x0*b\b" if n.get("sms_parts") == "1" else r"NACK"
            res.check(re.search(want, n.get("last_answer") or "", re.I) and n.get("report:16"),
                      "%s (%s parts): failed with last_answer %r (report 16 %r): want %s" % (
                          nid, n.get("sms_parts"), n.get("last_answer"), n.get("report:16"), want))
        res.fig("failed_reason", next(iter(bad.values())).get("last_answer") if bad else None)
        listed = list_status(cl, res, "failed")
        res.check(set(bad) <= set(listed), "notification list --status failed lacks %s" % sorted(set(bad) - set(listed)))
        check_handed_once(res, notifs)
        tr = Traffic(res, notifs, [peer], gateway=True)
        tr.exactly_once(list(ok))
        subs = [r for r in tr.records if r.get("cmd") == "submit_sm" and r.get("dir") == "in"]
        throttled = [r for r in subs if r["_resp"] and r["_resp"].get("status") == 0x58]
        res.check(len(throttled) == 3, "%d submit_sm throttled, want 3" % len(throttled))
        res.fig("throttled_then_retried_by_kannel", sum(1 for r in throttled if len(tr.by_part.get(r.get("_part"), [])) > 1))
        res.fig("recipients_in_order", check_order(res, cl, notifs, tr))
        return res
    finally:
        stop_peers(peer)
        if kannel:
            kannel.stop()


# ---------------------------------------------------------------- 3. kannel_outage

def test_kannel_outage(cl):
    res = Result()
    peer = kannel = None
    try:
        peer, kannel = setup(cl, ("--receipts",), start_kannel=False)
        units = [Unit(200 + i, "fr") for i in range(3)]
        if not res.check(register(cl, res, units), "registration failed"):
            return res
        tids = [u.tid for u in units]
        queued = wait_recorded(cl, tids, 3)
        time.sleep(2.5)
        down = sms_notifs(cl, tids)
        res.fig("gateway_down", dict(collections.Counter(v.get("status") for v in down.values())))
        res.check(len(queued) == 3 and all(v.get("status") in ("queued", "sending") for v in down.values()),
                  "gateway down: %s, want 3 queued" % {k: v.get("status") for k, v in down.items()})
        res.check(all("unreachable" in (v.get("last_answer") or "") for v in down.values()),
                  "gateway down: last_answer %s" % [v.get("last_answer") for v in down.values()])
        # Our user's password is not the one the gateway knows: it answers 403; the SMS wait.
        kannel.password = "another-password"
        kannel.start()
        harness.wait_until(lambda: all("credentials" in (v.get("last_answer") or "")
                                       for v in sms_notifs(cl, tids).values()), 15, 0.1)
        refused = sms_notifs(cl, tids)
        res.fig("wrong_password", dict(collections.Counter(v.get("status") for v in refused.values())))
        res.check(all(v.get("status") in ("queued", "sending") and "credentials" in (v.get("last_answer") or "")
                      for v in refused.values()),
                  "wrong password: %s, want queued naming the credentials" % {
                      k: (v.get("status"), v.get("last_answer")) for k, v in refused.items()})
        attempts = max(int(v.get("attempts") or 0) for v in refused.values())
        res.fig("attempts_while_refused", attempts)
        res.check(not peer.submits(), "%d submit_sm while the gateway refused us" % len(peer.submits()))
        with open(os.path.join(cl.dir, "notification.log")) as f:
            res.check("refuses notification.http_sms_username/password" in f.read(),
                      "the credentials refusal is not logged")
        kannel.stop()
        kannel.password = KANNEL_PASSWORD
        kannel.start()
        notifs = wait_sms(cl, tids, timeout=30, count=3)
        check_statuses(res, notifs, "delivered", "after the outage: ")
        res.check(all(int(v.get("attempts") or 0) > 1 for v in notifs.values()) and
                  all(v.get("status") != "failed" for v in notifs.values()),
                  "outage attempts: %s" % {k: v.get("attempts") for k, v in notifs.items()})
        Traffic(res, notifs, [peer], "after the outage: ", gateway=True).exactly_once(list(notifs))

        # Forged or malformed callbacks change nothing.
        base = "http://127.0.0.1:%d" % kannel.callback_port
        nid = sorted(notifs)[0]
        before = notif_hashes(cl, [nid])[nid]
        r = cl.redis()
        consent = r.hget(cl.key("customer:" + units[0].cid), "consent_marketing")
        q = urllib.parse.urlencode
        cases = [
            ("wrong token", "/sms/dlr?" + q({"id": nid, "t": "0" * 32, "type": "2", "answer": "forged"}), 403),
            ("unknown id", "/sms/dlr?" + q({"id": "T-2026-999999:x:sms:1", "t": "0" * 32, "type": "1"}), 404),
            ("bad type", "/sms/dlr?" + q({"id": nid, "t": before.get("dlr_token"), "type": "3"}), 400),
            ("no key", "/sms/mo?" + q({"from": units[0].e164, "text": "STOP"}), 403),
            ("wrong key", "/sms/mo?" + q({"key": "x" * 23, "from": units[0].e164, "text": "STOP"}), 403),
            ("unknown path", "/sms/other", 404),
        ]
        got = {}
        for name, path, want in cases:
            status, body = get(base + path)
            got[name] = status
            res.check(status == want, "%s: HTTP %d %r, want %d" % (name, status, body.strip(), want))
        res.fig("refusals", got)
        after = notif_hashes(cl, [nid])[nid]
        res.check(after == before, "a refused callback changed %s: %s" % (nid, {
            k: (before.get(k), after.get(k)) for k in set(before) | set(after) if before.get(k) != after.get(k)}))
        res.check(r.hget(cl.key("customer:" + units[0].cid), "consent_marketing") == consent,
                  "a STOP without the key changed the customer's consent")
        return res
    finally:
        stop_peers(peer)
        if kannel:
            kannel.stop()


# ---------------------------------------------------------------- 4. kannel_stop

def test_kannel_stop(cl):
    res = Result()
    peer = kannel = None
    try:
        units = [Unit(300 + i, "fr", consent="sms,marketing") for i in range(4)]
        a, b, c, d = units
        peer = SmscPeer(cl, "gw")
        kannel = Kannel(cl, peer.port, harness.free_ports(1)[0])
        kannel.start()
        http_config(cl, kannel)
        cl.start_all()
        for u in units:
            out = run(cl, res, "customer", "add", "--name", "Client %d" % u.i, "--phone", u.phone, "--consent",
                      u.consent)
            u.cid = (out or {}).get("id")
        if not res.check(all(u.cid for u in units), "registration failed"):
            return res
        national = "0" + a.e164[3:]
        peer.start("--receipts", "--mo-stop", a.e164, "--mo-stop", b.e164.lstrip("+"), "--mo-stop", national)
        # The third STOP is a's number in national form, as SMSCs write local senders.
        r = cl.redis()

        def marketing(u):
            return r.hget(cl.key("customer:" + u.cid), "consent_marketing")
        harness.wait_until(lambda: marketing(a) == "0" and marketing(b) == "0", 15, 0.1)
        res.fig("consent_marketing", {"+336.. and 06..": marketing(a), "336..": marketing(b), "none": marketing(c)})
        res.check(marketing(a) == "0" and marketing(b) == "0",
                  "STOP through Kannel: consent_marketing %r %r, want \"0\" \"0\"" % (marketing(a), marketing(b)))
        res.check(marketing(c) == "1" and marketing(d) == "1",
                  "no STOP from c, d: consent_marketing %r %r, want \"1\"" % (marketing(c), marketing(d)))
        res.check(r.hget(cl.key("customer:" + a.cid), "consent_sms") == "1", "STOP removed the service SMS consent")
        with open(os.path.join(cl.dir, "notification.log")) as f:
            log = f.read()
        stops = len(re.findall(r"STOP from \+3\*+\d\d: 1 customer", log))
        res.fig("stops_logged", stops)
        res.check(stops >= 3, "%d STOP replies recorded in the log, want 3 (+33, 33, 06 forms)" % stops)
        res.check(a.e164 not in log and b.e164 not in log, "a phone number appears in clear in the log")
        if open_for(cl, res, a):
            n = wait_sms(cl, [a.tid], timeout=30, count=1)
            check_statuses(res, n, "delivered", "service SMS after STOP: ")
        return res
    finally:
        stop_peers(peer)
        if kannel:
            kannel.stop()


# ---------------------------------------------------------------- 5. kannel_crash

def test_kannel_crash(cl):
    res = Result()
    peer = kannel = None
    try:
        units = [Unit(400 + i, "fr" if i % 2 == 0 else "en", old=i % 4 == 3) for i in range(50)]
        peer, kannel = setup(cl, ("--receipts", "--delay-ms", 50), start_kannel=False, sms_stale_ms=1000)
        if not res.check(register(cl, res, units), "registration failed"):
            return res
        pmap(lambda u: repair_flow(cl, res, u, ("diagnose",)), units)
        tids = [u.tid for u in units]
        queued = wait_recorded(cl, tids, 100)
        res.fig("in_flight", len(queued))
        kannel.start()
        kills = []
        for k in range(5):
            harness.wait_until(lambda: len(peer.submits()) >= 10 + 20 * k, 60, 0.02)
            cl.kill_service("notification")
            kills.append(len(peer.submits()))
            time.sleep(0.5)  # reports for SMS in flight arrive while nobody listens: Kannel tries them again
            cl.start_service("notification")
            cl.wait_service("notification")
        res.fig("submits_at_kills", kills)
        t0 = time.monotonic()
        notifs = wait_sms(cl, tids, timeout=90, count=len(queued))
        res.fig("seconds_after_restart", round(time.monotonic() - t0, 1))
        res.fig("sms", len(notifs))
        check_statuses(res, notifs, "delivered")
        tr = Traffic(res, notifs, [peer], gateway=True)
        dups, _, _ = tr.exactly_once(list(notifs), allow_dups=True)
        dup_nids = sorted({k[0] for k, _ in dups})
        res.fig("sms_twice_at_smsc", len(dup_nids))
        resent = [k for k, v in notifs.items() if int(v.get("resent_after_crash") or 0)]
        res.fig("resent_after_crash", len(resent))
        res.fig("claims", sum(int(v.get("attempts") or 0) for v in notifs.values()))
        for nid in dup_nids:
            res.check(nid in resent, "%s reached the SMSC twice but resent_after_crash is %r" % (
                nid, notifs[nid].get("resent_after_crash")))
        res.check(len(dup_nids) <= len(kills), "%d SMS twice after %d crashes: the window is one hand-over per "
                  "crash" % (len(dup_nids), len(kills)))
        return res
    finally:
        stop_peers(peer)
        if kannel:
            kannel.stop()


TESTS = [
    ("kannel_delivery", test_kannel_delivery),
    ("kannel_errors", test_kannel_errors),
    ("kannel_outage", test_kannel_outage),
    ("kannel_stop", test_kannel_stop),
    ("kannel_crash", test_kannel_crash),
]


if __name__ == "__main__":
    sys.exit(fixtures.standalone(TESTS, __doc__))
