#!/usr/bin/python3
"""SAV system tests of billing: quotes, invoices (gapless numbering under concurrency and under SIGKILL),
payments, credit notes, reminders and late-payment figures, warranty claims.

Usage: /usr/bin/python3 tests/system/billing_tests.py --bin build/bin [--only NAME[,NAME...]] [--keep]

Each test gets its own Cluster (temp dir, redis-server, the four services on free 127.0.0.1 ports). Expected
amounts are computed here by hand from the catalog figures below, never read back from the service. Prints one
PASS/FAIL line per test with its figures, the problems and log tails of a failing test, and ends with the line
"N passed, N failed"; exits 1 if any test failed. run.py may import TESTS: every test takes a harness.Cluster and
returns a Result with .problems and .figures.
"""

import collections
import concurrent.futures
import datetime
import fractions
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
from zoneinfo import ZoneInfo

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixtures  # noqa: E402
from fixtures import Result, pmap  # noqa: E402
import harness  # noqa: E402
from harness import HarnessError  # noqa: E402

import zmq  # noqa: E402

PARIS = ZoneInfo("Europe/Paris")
DAY_MS = 86400 * 1000
WORKERS = 4                   # parallel savctl invocations
OUTBOXES = ("outbox:diagnostics", "outbox:billing", "outbox:notification")
MT_EVENT_ACK, MT_TICKET_READY = 50, 105
SENDERS_PER_ENDPOINT = 3      # threads sending hand-made TicketReady envelopes to each billing endpoint
ACK, RETRY, REJECT = 0, 1, 2

# Catalog figures (deploy/local/catalog.json) and billing defaults (common/settings.c), written out by hand.
PART = "RES-2000W"
PART_CENTS = 4590
CENTRES = {  # labour cents per hour, travel fee, diagnostic fee
    "PAR-01": (6500, 4500, 3900),
    "LYO-01": (6000, 3900, 0),
}
VAT_BP = 2000
WARRANTY_LABOUR_RATE = 4500   # billing.warranty_labour_rate_cents
SELLER_SIRET = "73282932000074"
ECB_BP, POINTS_BP, INDEMNITY_CENTS, LEGAL_INTEREST_BP = 400, 1000, 4000, 792
BUSINESS_PAYMENT_DAYS = 30
QUOTE_VALIDITY_DAYS, QUOTE_REMINDER_DAYS = 30, 5
SIREN = "732829320"


def collecting(body):
    """Turns body(cl, res) into a test(cl) -> Result that keeps the problems found before an exception."""
    def test(cl):
        res = Result()
        try:
            body(cl, res)
        except HarnessError as e:
            res.problems.append("HarnessError: %s" % e)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # a bug in a test, or a reply of an unexpected shape
            res.problems.append("".join(traceback.format_exception_only(type(e), e)).strip())
            res.problems.append(traceback.format_exc())
        return res
    test.__name__ = body.__name__
    test.__doc__ = body.__doc__
    return test


# ---------------------------------------------------------------- arithmetic, dates

def half_up(fr):
    """Rounds a non-negative Fraction to the nearest integer, halves up."""
    fr = fractions.Fraction(fr)
    return (fr.numerator * 2 + fr.denominator) // (2 * fr.denominator)


def quote_expect(centre, on_site, minutes=45, parts=((PART, PART_CENTS, 1),)):
    """The quote's lines and totals, by hand: parts at catalog price, labour at the centre's hourly rate for the
    minutes (to the nearest cent), travel for on-site work; one VAT rate of 20 % on the net total."""
    rate, travel, _ = CENTRES[centre]
    lines = [("part", ref, qty, cents, qty * cents, VAT_BP) for ref, cents, qty in parts]
    lines.append(("labour", "", minutes, rate, half_up(fractions.Fraction(minutes * rate, 60)), VAT_BP))
    if on_site:
        lines.append(("travel", "", 1, travel, travel, VAT_BP))
    net = sum(l[4] for l in lines)
    vat = half_up(fractions.Fraction(net * VAT_BP, 10000))
    return lines, net, vat, net + vat


def doc_lines(doc):
    return [(l.get("kind"), l.get("ref"), l.get("quantity"), l.get("unit_cents"), l.get("amount_cents"),
             l.get("vat_bp")) for l in (doc or {}).get("lines", [])]


def paris_date(offset_ms=0):
    """The Europe/Paris date of now + offset_ms, as the services compute it (UTC instant, then local date)."""
    return datetime.datetime.fromtimestamp(time.time() + offset_ms / 1000.0, PARIS).date()


def paris_year():
    return paris_date().year


# ---------------------------------------------------------------- savctl and Redis helpers

def sv(cl, res, *args, want=0, err_has=None, env=None):
    """savctl --json ARGS: records a problem unless it exits `want` (and stderr holds err_has); returns the JSON
    document (exit 0) or None."""
    cmd = "savctl %s" % " ".join(map(str, args))
    try:
        r = cl.savctl(*args, json_out=True, env=env)
    except HarnessError as e:
        res.check(False, "%s: %s" % (cmd, e))
        return None
    if not res.check(r.returncode == want, "%s: exit %d, want %d (stderr %r)" % (
            cmd, r.returncode, want, r.stderr.strip()[:300])):
        return None
    if err_has and not res.check(err_has in r.stderr, "%s: stderr %r does not say %r" % (
            cmd, r.stderr.strip()[:300], err_has)):
        return None
    if r.returncode != 0:
        return {}
    try:
        return json.loads(r.stdout)
    except ValueError:
        res.check(False, "%s printed invalid JSON: %r" % (cmd, r.stdout[:300]))
        return None


def raw(cl, *args, env=None):
    """savctl --json ARGS -> (exit code, parsed JSON or None, stderr); never records anything."""
    try:
        r = cl.savctl(*args, json_out=True, env=env)
    except HarnessError as e:
        return -1, None, str(e)
    data = None
    if r.returncode == 0:
        try:
            data = json.loads(r.stdout)
        except ValueError:
            pass
    return r.returncode, data, r.stderr.strip()


def rkey(cl, name):
    return cl.key(name)


def hget(cl, name, field):
    try:
        return cl.redis().hget(rkey(cl, name), field)
    except Exception:  # Redis restarting
        return None


def tstate(cl, tid):
    return hget(cl, "ticket:" + tid, "state")


def wait_state(cl, tid, state, timeout=10):
    return harness.wait_until(lambda: tstate(cl, tid) == state, timeout, 0.02)


def wait_quote(cl, tid, version, timeout=10):
    return harness.wait_until(lambda: hget(cl, "quote:" + tid, "version") == str(version), timeout, 0.02)


def notif_ids(cl, tid, event=None):
    ids = cl.redis().lrange(rkey(cl, "notifs:" + tid), 0, -1)
    return [i for i in ids if event is None or (":%s:" % event) in i]


def timeline_events(cl, tid, event):
    return [e for e in (json.loads(x) for x in cl.redis().lrange(rkey(cl, "timeline:" + tid), 0, -1))
            if e.get("event") == event]


def outboxes_empty(cl):
    try:
        r = cl.redis()
        return not any(r.xlen(rkey(cl, ob)) for ob in OUTBOXES)
    except Exception:
        return False


def check_drained(cl, res, timeout=20):
    t0 = time.monotonic()
    harness.wait_until(lambda: outboxes_empty(cl), timeout, 0.05)
    r = cl.redis()
    depths = {ob: r.xlen(rkey(cl, ob)) for ob in OUTBOXES}
    dead = r.xlen(rkey(cl, "deadletter"))
    res.check(not any(depths.values()), "outboxes not drained after %d s: %s" % (timeout, depths))
    res.check(dead == 0, "%d dead letter(s): %s" % (dead, r.xrange(rkey(cl, "deadletter"), count=3)))
    res.fig("drain_s", round(time.monotonic() - t0, 1))
    res.fig("outbox_left", sum(depths.values()))
    res.fig("dead_letters", dead)


def invoice_ids_stored(cl):
    """Every invoice hash in Redis (not its :payments / :credits lists)."""
    r = cl.redis()
    prefix = rkey(cl, "invoice:")
    return sorted(k[len(prefix):] for k in r.scan_iter(match=prefix + "FAC-*", count=1000)
                  if ":" not in k[len(prefix):])


def issued_by(cl):
    """From billing*.log: invoices issued first by a pipeline message or by a hand-made one, and deliveries
    answered "already issued"."""
    out = collections.Counter()
    for name in os.listdir(cl.dir):
        if not (name.startswith("billing") and name.endswith(".log")):
            continue
        with open(os.path.join(cl.dir, name), encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                msg = e.get("msg", "")
                if not msg.startswith("invoice FAC-"):
                    continue
                if msg.endswith("already issued"):
                    out["again"] += 1
                elif msg.endswith(" issued"):
                    out["hand_made" if str(e.get("msg_id", "")).startswith("bt-") else "pipeline"] += 1
    return out


def check_numbering(cl, res, n, tickets):
    """Invoice numbers of the year are exactly FAC-<year>-000001..n, one repair invoice per ticket."""
    r = cl.redis()
    year = paris_year()
    want = ["FAC-%d-%06d" % (year, i) for i in range(1, n + 1)]
    indexed = sorted(r.zrange(rkey(cl, "invoices"), 0, -1))
    stored = invoice_ids_stored(cl)
    seq = r.get(rkey(cl, "seq:invoice:%d" % year))
    res.fig("invoices", len(indexed))
    res.fig("seq", seq)
    missing = sorted(set(want) - set(indexed))
    extra = sorted(set(indexed) - set(want))
    res.check(indexed == want, "ZRANGE invoices: %d ids, want FAC-%d-000001..%06d; missing %s, unexpected %s" % (
        len(indexed), year, n, missing[:10], extra[:10]))
    res.check(stored == want, "invoice hashes in Redis: %d (%s...), want exactly the %d numbers 1..%d" % (
        len(stored), stored[:3], n, n))
    res.check(seq == str(n), "GET seq:invoice:%d = %r, want %d" % (year, seq, n))
    owners = collections.Counter()
    for inv in indexed:
        owners[r.hget(rkey(cl, "invoice:" + inv), "ticket")] += 1
    for tid in tickets:
        fid = r.get(rkey(cl, "invoice_for:%s:repair" % tid))
        if not res.check(fid, "%s: no invoice_for:%s:repair" % (tid, tid)):
            continue
        h = r.hgetall(rkey(cl, "invoice:" + fid))
        res.check(h.get("ticket") == tid and h.get("kind") == "repair",
                  "invoice_for:%s:repair = %s, whose ticket is %r kind %r" % (tid, fid, h.get("ticket"), h.get("kind")))
        res.check(owners[tid] == 1, "%s has %d invoices, want exactly 1" % (tid, owners[tid]))
        res.check(r.hget(rkey(cl, "ticket:" + tid), "invoice_id") == fid, "ticket %s invoice_id %r, want %s" % (
            tid, r.hget(rkey(cl, "ticket:" + tid), "invoice_id"), fid))
    dup_kinds = [k for k in r.scan_iter(match=rkey(cl, "invoice_for:*:diagnostic"), count=1000)]
    res.check(not dup_kinds, "unexpected diagnostic invoices: %s" % dup_kinds[:5])


# ---------------------------------------------------------------- processes

def write_config(cl, extra):
    cl.write_config(cl.config, extra=extra)


def start_service_env(cl, name, env):
    """Starts sav-<name> with extra environment variables and waits until its port accepts connections."""
    try:
        p = cl.start_service(name, env=env)
    except TypeError:  # an older harness without env: set it in os.environ just for the spawn
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            p = cl.start_service(name)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    wait_port(cl, cl.ports[name], p, name)
    return p


def wait_port(cl, port, proc, what, timeout=20):
    deadline = time.monotonic() + timeout
    while not harness.port_open(port):
        if proc.poll() is not None:
            raise HarnessError("%s exited with %s:\n%s" % (what, proc.returncode,
                                                           harness.tail_file(os.path.join(cl.dir, what + ".log"))))
        if time.monotonic() > deadline:
            raise HarnessError("%s did not bind port %d within %ss" % (what, port, timeout))
        time.sleep(0.02)


def restart_billing(cl, offset_days=None, timeout=20):
    """SIGTERM sav-billing, start it again with SAV_CLOCK_OFFSET_MS = offset_days (None: the real clock)."""
    code = cl.stop_service("billing")
    env = {"SAV_CLOCK_OFFSET_MS": str(int(offset_days * DAY_MS))} if offset_days else {}
    if env:
        start_service_env(cl, "billing", env)
    else:
        p = cl.start_service("billing")
        wait_port(cl, cl.ports["billing"], p, "billing")
    # Readiness: billing answers a command (its Redis connection and catalog are up).
    harness.wait_until(lambda: raw(cl, "claim", "list", env={"SAV_CLIENT_TIMEOUT_MS": "500",
                                                              "SAV_CLIENT_ATTEMPTS": "1"})[0] == 0, timeout, 0.05)
    return code


def spawn_extra(cl, name, env):
    """Starts one more process of a service binary under the Cluster (logged in <name>.log, killed at exit)."""
    log_path = os.path.join(cl.dir, name + ".log")
    logs = getattr(cl, "_logs", None)
    if isinstance(logs, list) and log_path not in logs:
        logs.append(log_path)
    argv = [cl.binary("sav-billing"), "--config", cl.config]
    if harness.SETPRIV and threading.current_thread() is threading.main_thread():
        argv = [harness.SETPRIV, "--pdeathsig", "KILL", "--"] + argv
    full_env = dict(os.environ)
    full_env.update(env)
    with open(log_path, "ab") as log:
        log.write(("==== %s start: %s  env %s\n" % (time.strftime("%H:%M:%S"), " ".join(argv), env)).encode())
        log.flush()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=cl.dir,
                             start_new_session=True, env=full_env)
    reg = getattr(harness, "_register", None)
    if reg:
        reg(p)
    cl.procs[name] = p  # stop_all (and run.py's end-of-test checks) see it too
    return p


def stop_proc(p, timeout=10):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)
    unreg = getattr(harness, "_unregister", None)
    if unreg:
        unreg(p)
    return p.returncode


# ---------------------------------------------------------------- records and tickets

class Shop:
    """Creates customers, products and tickets, and drives tickets through diagnosis and quotes."""

    def __init__(self, cl, res, tag):
        self.cl, self.res, self.tag, self.n = cl, res, tag, 0
        self.lock = threading.Lock()

    def customer(self, business=None, name=None):
        args = ["customer", "add", "--name", name or "Client %s" % self.tag, "--phone", "06 12 34 56 78"]
        if business:
            args += ["--business", business]
        d = sv(self.cl, self.res, *args)
        if not d or not str(d.get("id", "")).startswith("C-"):
            raise HarnessError("customer add failed: %r" % d)
        return d["id"]

    def serial(self):
        with self.lock:
            self.n += 1
            return "SN-%s-%04d" % (self.tag, self.n)

    def ticket(self, cid, centre="PAR-01", channel=None, delivered="2019-01-01", wait_estimate=True):
        """product add + ticket open (repair); returns the ticket id once it is in_diagnosis and, unless
        wait_estimate is false, billing has recorded its first coverage estimate (the normal order of events: the
        technician's verdict comes after it)."""
        sn = self.serial()
        if sv(self.cl, self.res, "product", "add", "--serial", sn, "--model", "WM-7000", "--customer", cid,
              "--delivered", delivered) is None:
            raise HarnessError("product add %s failed" % sn)
        args = ["ticket", "open", "--customer", cid, "--serial", sn, "--kind", "repair", "--symptom",
                "ne chauffe plus", "--centre", centre]
        if channel:
            args += ["--channel", channel]
        d = sv(self.cl, self.res, *args)
        if not d or not d.get("id"):
            raise HarnessError("ticket open for %s failed" % sn)
        tid = d["id"]
        if not wait_state(self.cl, tid, "in_diagnosis", 15):
            raise HarnessError("%s did not reach in_diagnosis (state %s)" % (tid, tstate(self.cl, tid)))
        if wait_estimate and not harness.wait_until(lambda: hget(self.cl, "coverage:" + tid, "status"), 15, 0.02):
            raise HarnessError("%s: no coverage estimate from billing within 15 s" % tid)
        return tid

    def diagnose(self, tid, cause="wear", minutes=45, version=1, want_state="awaiting_approval", await_quote=True):
        d = sv(self.cl, self.res, "diagnose", tid, "--cause", cause, "--action", "replace_parts", "--part", PART,
               "--labour", minutes)
        if d is None:
            raise HarnessError("diagnose %s failed" % tid)
        self.res.check(d.get("state") == want_state and d.get("version") == version,
                       "diagnose %s: state %r version %r, want %s version %d" % (
                           tid, d.get("state"), d.get("version"), want_state, version))
        if want_state == "awaiting_approval" and await_quote and not wait_quote(self.cl, tid, version, 15):
            raise HarnessError("no quote version %d for %s" % (version, tid))
        return d

    def accepted(self, cid, centre="PAR-01"):
        """A ticket with an accepted quote, in_repair."""
        tid = self.ticket(cid, centre)
        self.diagnose(tid)
        d = sv(self.cl, self.res, "quote", "accept", tid, "--request-id", "acc-" + tid)
        if not d or d.get("state") != "in_repair":
            raise HarnessError("quote accept %s: %r" % (tid, d))
        return tid

    def invoiced(self, cid, centre="PAR-01"):
        """A repaired ticket in ready, and its invoice id."""
        tid = self.accepted(cid, centre)
        d = sv(self.cl, self.res, "repair", "done", tid)
        if not d or d.get("state") != "ready":
            raise HarnessError("repair done %s: %r" % (tid, d))
        if not harness.wait_until(lambda: hget(self.cl, "ticket:" + tid, "invoice_id"), 15, 0.02):
            raise HarnessError("no invoice issued for %s within 15 s" % tid)
        return tid, hget(self.cl, "ticket:" + tid, "invoice_id")


def stock_up(cl, res, qty=200):
    for centre in CENTRES:
        sv(cl, res, "parts", "receive", centre, PART, qty, "--reason", "billing tests")


# ---------------------------------------------------------------- hand-made TicketReady envelopes

def ticket_ready_body(outcome="repaired", step="repair.done"):
    return harness.pb_field_bytes(1, outcome) + harness.pb_field_bytes(2, step)


def send_ready(sock, tid, mid, timeout_ms=5000):
    """Sends one TicketReady on a DEALER; returns (reply type, ack message id, ack status, reason) or an error."""
    env = harness.encode_envelope(mid, MT_TICKET_READY, ticket_ready_body(), ticket_id=tid, source="billing-test")
    sock.send_multipart([b"", env])
    if not sock.poll(timeout_ms, zmq.POLLIN):
        return ("timeout", None, None, None)
    frames = sock.recv_multipart()
    rep = harness.decode_envelope(frames[-1])
    if rep["type"] != MT_EVENT_ACK:
        return (rep["type"], rep["message_id"], None, repr(harness.decode_error_reply(rep["body"]))
                if rep["type"] == harness.MT_ERROR_REPLY else None)
    f = harness.pb_decode(rep["body"])
    ack_mid = f.get(1, [b""])[-1].decode("utf-8", "replace")
    status = f.get(2, [None])[-1]
    reason = f.get(3, [b""])[-1].decode("utf-8", "replace")
    return (rep["type"], ack_mid, status, reason)


def ready_sender(cl, ctx, endpoint=None):
    """A DEALER to billing (at endpoint, default its own) authenticated with diagnostics' key: events come from
    services only."""
    return cl.dealer(ctx, "billing", identity="diagnostics", endpoint=endpoint)


def blast_ready(cl, endpoints, tids, threads_per_endpoint=2, start=None):
    """Sends, from threads_per_endpoint threads per endpoint at once, one TicketReady per ticket each (unique
    message ids); returns a list of (endpoint, ticket, message id, reply)."""
    ctx = zmq.Context.instance()
    out, lock = [], threading.Lock()

    def worker(ep, k):
        s = ready_sender(cl, ctx, ep)
        try:
            if start:
                start.wait(10)
            order = tids if k % 2 == 0 else list(reversed(tids))
            for tid in order:
                mid = "bt-ready-%s-%d-%s" % (tid, k, uuid.uuid4().hex[:12])
                try:
                    rep = send_ready(s, tid, mid)
                except Exception as e:  # noqa: BLE001
                    rep = ("exception %s" % e, None, None, None)
                with lock:
                    out.append((ep, tid, mid, rep))
                if rep[0] == "timeout":  # the DEALER may hold a stale reply: start a fresh socket
                    s.close(0)
                    s = ready_sender(cl, ctx, ep)
        finally:
            s.close(0)

    ths = [threading.Thread(target=worker, args=(ep, i * threads_per_endpoint + k), daemon=True)
           for i, ep in enumerate(endpoints) for k in range(threads_per_endpoint)]
    for t in ths:
        t.start()
    return ths, out


# ================================================================ 1. quote_totals_and_transitions

@collecting
def test_quote_totals_and_transitions(cl, res):
    write_config(cl, {"intake": [("scheduler_ms", "200")]})
    cl.start_all()
    stock_up(cl, res)
    shop = Shop(cl, res, "q")
    cid = shop.customer(name="Jeanne Martin")
    cases = [("A", "PAR-01", None), ("B", "PAR-01", "on_site"), ("C", "LYO-01", None), ("D", "LYO-01", "on_site"),
             ("E", "PAR-01", None)]
    t = {}
    for name, centre, channel in cases:
        t[name] = shop.ticket(cid, centre, channel)
        shop.diagnose(t[name])
    # Hand-computed totals: PAR-01 drop_off 94.65 + 18.93 = 113.58; on_site + 45.00 net.
    literal = {"A": (9465, 1893, 11358), "B": (13965, 2793, 16758), "C": (9090, 1818, 10908),
               "D": (12990, 2598, 15588), "E": (9465, 1893, 11358)}
    today = paris_date()
    for name, centre, channel in cases:
        q = sv(cl, res, "quote", "show", t[name]) or {}
        doc = q.get("document") or {}
        lines, net, vat, gross = quote_expect(centre, channel == "on_site")
        res.check((net, vat, gross) == literal[name], "test arithmetic: %s %s %s" % (name, (net, vat, gross),
                                                                                    literal[name]))
        res.check(doc_lines(doc) == lines, "quote %s (%s %s) lines %s, want %s" % (
            t[name], centre, channel or "drop_off", doc_lines(doc), lines))
        got = (doc.get("net_cents"), doc.get("vat_cents"), doc.get("gross_cents"))
        res.check(got == (net, vat, gross), "quote %s (%s %s) net/vat/gross %s, want %s" % (
            t[name], centre, channel or "drop_off", got, (net, vat, gross)))
        res.check(doc.get("vat") == [{"vat_bp": VAT_BP, "base_cents": net, "vat_cents": vat}],
                  "quote %s VAT breakdown %r" % (t[name], doc.get("vat")))
        res.check(q.get("version") == 1 and q.get("status") == "pending", "quote %s version/status %r/%r" % (
            t[name], q.get("version"), q.get("status")))
        want_until = (today + datetime.timedelta(days=QUOTE_VALIDITY_DAYS)).isoformat()
        res.check(q.get("valid_until") == want_until, "quote %s valid_until %r, want %s" % (
            t[name], q.get("valid_until"), want_until))
        res.check(doc.get("seller_siret") == SELLER_SIRET and doc.get("hourly_rate_cents") == CENTRES[centre][0]
                  and doc.get("diagnostic_fee_cents") == CENTRES[centre][2],
                  "quote %s mentions: siret %r rate %r fee %r" % (t[name], doc.get("seller_siret"),
                                                                 doc.get("hourly_rate_cents"),
                                                                 doc.get("diagnostic_fee_cents")))
    res.fig("quotes", len(cases))

    # Accept: in_repair (the part is in stock); a second accept is refused; the same request id replays.
    d = sv(cl, res, "quote", "accept", t["A"], "--request-id", "accept-A-1") or {}
    res.check(d.get("state") == "in_repair" and d.get("previous_state") == "awaiting_approval"
              and d.get("replayed") is False, "quote accept %s: %r, want in_repair from awaiting_approval" % (
                  t["A"], d))
    res.check(tstate(cl, t["A"]) == "in_repair", "%s state %s after accept" % (t["A"], tstate(cl, t["A"])))
    res.check(hget(cl, "quote:" + t["A"], "status") == "accepted", "quote %s status %r after accept" % (
        t["A"], hget(cl, "quote:" + t["A"], "status")))
    sv(cl, res, "quote", "accept", t["A"], want=2)
    sv(cl, res, "quote", "accept", t["A"], "--request-id", "accept-A-2", want=2)
    rc, d, err = raw(cl, "quote", "accept", t["A"], "--request-id", "accept-A-1")
    res.check(rc == 0 and d and d.get("replayed") is True and d.get("state") == "in_repair",
              "quote accept %s --request-id accept-A-1 again (the id of the accept that succeeded): exit %d %r %r, "
              "want exit 0 replayed true state in_repair (the help: 'the same id again returns the first answer')" % (
                  t["A"], rc, d, err))
    res.check(len(timeline_events(cl, t["A"], "quote.accepted")) == 1, "%s: %d quote.accepted timeline entries" % (
        t["A"], len(timeline_events(cl, t["A"], "quote.accepted"))))

    # Corrected verdict: version 2 supersedes version 1.
    shop.diagnose(t["C"], minutes=60, version=2)
    q = sv(cl, res, "quote", "show", t["C"]) or {}
    lines, net, vat, gross = quote_expect("LYO-01", False, minutes=60)
    res.check((net, vat, gross) == (10590, 2118, 12708), "test arithmetic C v2")
    res.check(q.get("version") == 2 and q.get("status") == "pending" and
              (q.get("document") or {}).get("gross_cents") == gross and doc_lines(q.get("document")) == lines,
              "quote %s after the corrected verdict: version %r status %r gross %r, want 2 pending %d" % (
                  t["C"], q.get("version"), q.get("status"), (q.get("document") or {}).get("gross_cents"), gross))
    old = [json.loads(x) for x in cl.redis().lrange(rkey(cl, "quotes:" + t["C"]), 0, -1)]
    old = [dict(zip(o[::2], o[1::2])) for o in old]
    res.check(len(old) == 1 and old[0].get("version") == "1" and old[0].get("status") == "superseded"
              and old[0].get("gross_cents") == "10908",
              "quotes:%s (earlier versions) = %r, want version 1 superseded at 10908" % (
                  t["C"], [(o.get("version"), o.get("status"), o.get("gross_cents")) for o in old]))
    d = sv(cl, res, "quote", "accept", t["C"]) or {}
    res.check(d.get("state") == "in_repair", "accept of quote v2 %s: %r" % (t["C"], d))

    # Refuse: ready, unrepaired; the diagnostic fee is invoiced at PAR-01 (39.00 + 7.80), not at LYO-01.
    for name in ("B", "D"):
        d = sv(cl, res, "quote", "refuse", t[name], "--reason", "trop cher") or {}
        res.check(d.get("state") == "ready", "quote refuse %s: %r, want ready" % (t[name], d))
        h = cl.redis().hgetall(rkey(cl, "ticket:" + t[name]))
        res.check(h.get("state") == "ready" and h.get("outcome") == "unrepaired",
                  "%s after refusal: state %r outcome %r, want ready unrepaired" % (t[name], h.get("state"),
                                                                                   h.get("outcome")))
        res.check(hget(cl, "quote:" + t[name], "status") == "refused", "quote %s status %r, want refused" % (
            t[name], hget(cl, "quote:" + t[name], "status")))
    fid = harness.wait_until(lambda: cl.redis().get(rkey(cl, "invoice_for:%s:diagnostic" % t["B"])), 15, 0.05)
    if res.check(fid, "no diagnostic invoice for %s (PAR-01 refusal) within 15 s" % t["B"]):
        inv = sv(cl, res, "invoice", "show", fid) or {}
        fee = CENTRES["PAR-01"][2]
        fvat = half_up(fractions.Fraction(fee * VAT_BP, 10000))
        res.check((fee, fvat, fee + fvat) == (3900, 780, 4680), "test arithmetic: diagnostic fee")
        doc = inv.get("document") or {}
        res.check(inv.get("kind") == "diagnostic" and inv.get("total_cents") == 4680 and
                  inv.get("balance_cents") == 4680 and inv.get("ticket") == t["B"] and inv.get("status") == "unpaid",
                  "diagnostic invoice %s: kind %r total %r balance %r ticket %r status %r, want diagnostic 4680 %s "
                  "unpaid" % (fid, inv.get("kind"), inv.get("total_cents"), inv.get("balance_cents"),
                              inv.get("ticket"), inv.get("status"), t["B"]))
        res.check([(l[0], l[2], l[3], l[4]) for l in doc_lines(doc)] == [("diagnostic", 1, 3900, 3900)] and
                  (doc.get("net_cents"), doc.get("vat_cents"), doc.get("gross_cents")) == (3900, 780, 4680),
                  "diagnostic invoice %s document: lines %s totals %s" % (
                      fid, doc_lines(doc), (doc.get("net_cents"), doc.get("vat_cents"), doc.get("gross_cents"))))
        res.fig("diagnostic_invoice", "%s=%s" % (fid, inv.get("total_cents")))
        # The consumer collects the unrepaired product only once the diagnostic fee is paid.
        sv(cl, res, "ticket", "pickup", t["B"], want=2, err_has="unpaid")
        sv(cl, res, "payment", "record", fid, "--amount", 4680, "--method", "card")
        sv(cl, res, "ticket", "pickup", t["B"])
    d = sv(cl, res, "ticket", "pickup", t["D"]) or {}  # LYO-01: nothing to pay
    res.check(d.get("state") == "closed", "pickup of %s (refused at LYO-01, no fee): %r" % (t["D"], d))
    harness.wait_until(lambda: outboxes_empty(cl), 15, 0.05)
    for name in ("A", "C", "D"):
        for kind in ("diagnostic", "repair"):
            k = cl.redis().get(rkey(cl, "invoice_for:%s:%s" % (t[name], kind)))
            res.check(not k, "%s (%s) has a %s invoice %s, want none" % (t[name], name, kind, k))
    n_inv = cl.redis().zcard(rkey(cl, "invoices"))
    res.check(n_inv == 1, "%d invoices after one PAR-01 refusal and one LYO-01 refusal, want 1" % n_inv)

    # A verdict recorded while billing is down: billing then gets the pre-diagnosis (its first estimate) and the
    # verdict in that order; the estimate must not replace the verdict's decided coverage, and the repaired
    # ticket must be invoiced.
    cl.stop_service("billing")
    f = shop.ticket(cid, "PAR-01", wait_estimate=False)
    shop.diagnose(f, await_quote=False)
    decided = cl.redis().hgetall(rkey(cl, "coverage:" + f))
    restart_billing(cl)
    res.check(wait_quote(cl, f, 1, 15), "no quote for %s (verdict recorded while billing was down)" % f)
    harness.wait_until(lambda: outboxes_empty(cl), 15, 0.05)
    cov = cl.redis().hgetall(rkey(cl, "coverage:" + f))
    res.check(decided.get("status") == "decided" and cov.get("status") == "decided" and
              cov.get("customer_pays") == "1" and cov.get("rule") == decided.get("rule"),
              "coverage of %s: %r after the verdict, %r once billing caught up: the late first estimate replaced "
              "the technician's decided coverage" % (
                  f, {k: decided.get(k) for k in ("status", "rule", "estimate_cents")},
                  {k: cov.get(k) for k in ("status", "rule", "estimate_cents")}))
    sv(cl, res, "quote", "accept", f)
    sv(cl, res, "repair", "done", f)
    fid = harness.wait_until(lambda: cl.redis().get(rkey(cl, "invoice_for:%s:repair" % f)), 10, 0.05)
    res.check(fid, "%s: repaired with an accepted quote of 113.58 but no invoice within 10 s (billing acknowledged "
              "its TicketReady: %s)" % (f, "yes" if outboxes_empty(cl) else "no"))

    # Expiry reminder at +26 days: one quote_expiring notification, however many ticks and restarts.
    e = t["E"]
    restart_billing(cl, 26)
    got = harness.wait_until(lambda: notif_ids(cl, e, "quote_expiring"), 8, 0.05)
    res.check(got, "no quote_expiring notification for %s within 8 s at +26 days" % e)
    time.sleep(1.2)  # about six scheduler ticks
    restart_billing(cl, 26)
    time.sleep(1.2)
    ids = notif_ids(cl, e, "quote_expiring")
    rem = timeline_events(cl, e, "quote.reminder")
    res.fig("quote_expiring", len(ids))
    res.check(ids == ["%s:quote_expiring:sms:1" % e], "quote_expiring notifications of %s: %s, want exactly one "
              "(version 1)" % (e, ids))
    res.check(len(rem) == 1, "%s: %d quote.reminder timeline entries, want 1" % (e, len(rem)))
    res.check(hget(cl, "quote:" + e, "status") == "pending", "quote %s status %r at +26 days, want pending" % (
        e, hget(cl, "quote:" + e, "status")))
    # Expiry at +31 days.
    restart_billing(cl, 31)
    res.check(harness.wait_until(lambda: hget(cl, "quote:" + e, "status") == "expired", 15, 0.05),
              "quote %s status %r at +31 days, want expired" % (e, hget(cl, "quote:" + e, "status")))
    q = sv(cl, res, "quote", "show", e) or {}
    res.check(q.get("status") == "expired", "quote show %s at +31 days: status %r" % (e, q.get("status")))
    sv(cl, res, "quote", "accept", e, want=2)
    res.check(tstate(cl, e) == "awaiting_approval", "%s state %s after a refused accept of an expired quote" % (
        e, tstate(cl, e)))
    res.check(len(notif_ids(cl, e, "quote_expiring")) == 1, "quote_expiring count changed after expiry: %s" %
              notif_ids(cl, e, "quote_expiring"))
    restart_billing(cl)
    check_drained(cl, res)


# ================================================================ 2. invoice_numbering_concurrent

@collecting
def test_invoice_numbering_concurrent(cl, res):
    n = 40
    cl.start_all()
    stock_up(cl, res)
    shop = Shop(cl, res, "n")
    cid = shop.customer(name="Atelier Numérotation")
    t0 = time.monotonic()
    tids = pmap(lambda i: shop.accepted(cid), range(n))
    # The first half goes to ready now, invoiced by the pipeline alone; the second half's repair done runs while
    # the hand-made TicketReady envelopes (for every ticket) arrive on the three billing processes.
    early, late = tids[:n // 2], tids[n // 2:]
    for tid, (rc, d, err) in zip(early, pmap(lambda t: raw(cl, "repair", "done", t), early)):
        res.check(rc == 0 and d and d.get("state") == "ready", "repair done %s: exit %d %r %s" % (tid, rc, d, err))
    res.check(harness.wait_until(lambda: all(hget(cl, "ticket:" + t, "invoice_id") for t in early), 15, 0.05),
              "the pipeline did not invoice every ticket of the first half within 15 s")
    res.fig("prepare_s", round(time.monotonic() - t0, 1))
    # Two more billing instances on their own endpoints.
    extra_ports = harness.free_ports(2)
    http_ports = harness.free_ports(2)
    extras = []
    try:
        for i, port in enumerate(extra_ports):
            name = "billing-%d" % (i + 2)
            p = spawn_extra(cl, name, {"SAV_BILLING_ENDPOINT": "tcp://127.0.0.1:%d" % port,
                                       "SAV_BILLING_HTTP_LISTEN": "127.0.0.1:%d" % http_ports[i],
                                       "SAV_SERVICE_INSTANCE": str(i + 2)})
            extras.append((name, p))
            wait_port(cl, port, p, name)
        endpoints = [cl.endpoints["billing"]] + ["tcp://127.0.0.1:%d" % p for p in extra_ports]
        start = threading.Event()
        ths, replies = blast_ready(cl, endpoints, tids, threads_per_endpoint=SENDERS_PER_ENDPOINT, start=start)
        done_res = []

        def done(tid):
            return tid, raw(cl, "repair", "done", tid, "--request-id", "done-" + tid)

        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS) as ex:
            start.set()
            done_res = list(ex.map(done, late))
        for th in ths:
            th.join(60)
        res.fig("race_s", round(time.monotonic() - t0, 1))
        res.check(not any(th.is_alive() for th in ths), "TicketReady senders still running after 60 s")
        for tid, (rc, d, err) in done_res:
            res.check(rc == 0 and d and d.get("state") == "ready", "repair done %s: exit %d %r %s" % (
                tid, rc, d, err))
        by_ep = collections.Counter()
        bad = []
        early = 0
        for ep, tid, mid, rep in replies:
            typ, ack_mid, status, reason = rep
            if typ == MT_EVENT_ACK and ack_mid == mid and status == ACK:
                by_ep[ep] += 1
            elif typ == MT_EVENT_ACK and ack_mid == mid and status == 1 and "not ready" in (reason or ""):
                # Sent while `repair done` had not yet made the ticket ready: billing asks to retry later
                # rather than invoice a ticket that is not ready.
                by_ep[ep] += 1
                early += 1
            else:
                bad.append((ep, tid, mid, rep))
        res.fig("retry_not_ready", early)
        want_each = SENDERS_PER_ENDPOINT * n
        res.fig("acks", "/".join(str(by_ep[ep]) for ep in endpoints))
        res.check(len(replies) == 3 * want_each, "%d TicketReady sent, want %d" % (len(replies), 3 * want_each))
        res.check(not bad, "%d TicketReady not answered by an Ack (type 50, same message id, ACK or RETRY not ready): %s" % (
            len(bad), bad[:5]))
        check_drained(cl, res, 30)
        first = issued_by(cl)
        res.fig("issued_by", "pipeline:%d,hand_made:%d" % (first["pipeline"], first["hand_made"]))
        res.fig("issued_before_ready", sum(1 for t in tids for e in timeline_events(cl, t, "invoice.issued")
                                           if e.get("state") != "ready"))
        res.fig("already_issued", first["again"])
        check_numbering(cl, res, n, tids)
        # Each ticket's invoice_issued notice once: the notification ids carry the invoice number.
        for tid in tids:
            ids = notif_ids(cl, tid, "invoice_issued")
            res.check(len(ids) == 1, "%s: invoice_issued notifications %s, want 1" % (tid, ids))
            ev = timeline_events(cl, tid, "invoice.issued")
            res.check(len(ev) == 1, "%s: %d invoice.issued timeline entries, want 1" % (tid, len(ev)))
    finally:
        for name, p in extras:
            code = stop_proc(p)
            res.check(code == 0, "%s exit %s on SIGTERM, want 0" % (name, code))


# ================================================================ 3. invoice_numbering_sigkill

@collecting
def test_invoice_numbering_sigkill(cl, res):
    n = 30
    cl.start_all()
    stock_up(cl, res)
    shop = Shop(cl, res, "k")
    cid = shop.customer(name="Atelier Crash")
    t0 = time.monotonic()
    tids = pmap(lambda i: shop.accepted(cid), range(n))
    res.fig("prepare_s", round(time.monotonic() - t0, 1))
    stop = threading.Event()
    stats = {"done": [], "errors": [], "retries": 0}

    def driver():
        for tid in tids:
            deadline = time.monotonic() + 60
            while not stop.is_set():
                rc, d, err = raw(cl, "repair", "done", tid, "--request-id", "kdone-" + tid)
                if rc == 0 and d and d.get("state") == "ready":
                    stats["done"].append(tid)
                    break
                stats["retries"] += 1
                if time.monotonic() > deadline:
                    stats["errors"].append("repair done %s never succeeded: exit %d %s" % (tid, rc, err))
                    break
                time.sleep(0.1)
            time.sleep(0.12)

    th = threading.Thread(target=driver, daemon=True)
    kills = 0
    redis_killed = False
    t0 = time.monotonic()
    th.start()
    try:
        deadline = time.monotonic() + 90
        while th.is_alive() and time.monotonic() < deadline:
            time.sleep(1.0)
            cl.kill_service("billing")
            kills += 1
            if not redis_killed and kills == 2:
                cl.kill_redis()
                time.sleep(0.2)
                cl.start_redis()
                redis_killed = True
            cl.start_service("billing")
    finally:
        stop.set()
        th.join(70)
    res.fig("chaos_s", round(time.monotonic() - t0, 1))
    res.fig("billing_kills", kills)
    res.fig("redis_restarts", int(redis_killed))
    res.fig("step_retries", stats["retries"])
    res.check(not th.is_alive(), "the repair-done driver is still running")
    for e in stats["errors"]:
        res.check(False, e)
    if not cl.service_alive("billing"):
        cl.start_service("billing")
    cl.wait_ready(30)
    res.check(redis_killed, "redis was never killed (the driver ended before the second billing kill)")
    ready = [tid for tid in tids if tstate(cl, tid) == "ready"]
    res.fig("ready", "%d/%d" % (len(ready), n))
    res.check(len(ready) == n, "%d of %d tickets reached ready" % (len(ready), n))
    check_drained(cl, res, 40)
    res.fig("already_issued", issued_by(cl)["again"])
    check_numbering(cl, res, len(ready), ready)
    for tid in ready:
        ids = notif_ids(cl, tid, "invoice_issued")
        res.check(len(ids) == 1, "%s: invoice_issued notifications %s, want 1" % (tid, ids))


# ================================================================ 4. payments_credits

@collecting
def test_payments_credits(cl, res):
    cl.start_all()
    stock_up(cl, res)
    shop = Shop(cl, res, "p")
    consumer = shop.customer(name="Jeanne Martin")
    business = shop.customer(name="Garage Durand SARL", business=SIREN)
    year = paris_year()
    today = paris_date()
    t1, inv1 = shop.invoiced(consumer)
    total = 11358
    inv = sv(cl, res, "invoice", "show", inv1) or {}
    res.check(inv.get("total_cents") == total and inv.get("balance_cents") == total and inv.get("status") == "unpaid"
              and inv.get("due_on") == today.isoformat() and inv.get("customer_type") == "consumer",
              "invoice %s: total %r balance %r status %r due %r type %r, want %d unpaid due %s consumer" % (
                  inv1, inv.get("total_cents"), inv.get("balance_cents"), inv.get("status"), inv.get("due_on"),
                  inv.get("customer_type"), total, today))
    # Pickup refused while unpaid.
    sv(cl, res, "ticket", "pickup", t1, want=2, err_has="unpaid")
    res.check(tstate(cl, t1) == "ready", "%s state %s after a refused pickup" % (t1, tstate(cl, t1)))
    # Partial payments.
    d = sv(cl, res, "payment", "record", inv1, "--amount", 5000, "--method", "card", "--request-id", "pay-1") or {}
    res.check(d.get("balance_cents") == total - 5000 and d.get("status") == "partially_paid" and
              d.get("replayed") is False, "payment 5000 on %s: %r, want balance %d partially_paid" % (
                  inv1, d, total - 5000))
    d = sv(cl, res, "payment", "record", inv1, "--amount", 5000, "--method", "card", "--request-id", "pay-1") or {}
    res.check(d.get("replayed") is True and d.get("balance_cents") == total - 5000,
              "payment replayed with the same request id: %r" % d)
    d = sv(cl, res, "payment", "record", inv1, "--amount", 2000, "--method", "cheque", "--ref", "CHQ 1234") or {}
    res.check(d.get("balance_cents") == total - 7000 and d.get("status") == "partially_paid",
              "second payment 2000 on %s: %r" % (inv1, d))
    d = sv(cl, res, "payment", "record", inv1, "--amount", 5000, "--method", "card", "--request-id", "pay-1") or {}
    res.check(d.get("replayed") is True and d.get("balance_cents") == total - 5000,
              "payment pay-1 replayed after a second payment: %r, want its first answer (balance %d)" % (
                  d, total - 5000))
    sv(cl, res, "ticket", "pickup", t1, want=2, err_has="unpaid")
    # Overpayment: refused, nothing changes.
    before = cl.redis().hgetall(rkey(cl, "invoice:" + inv1))
    npay = cl.redis().llen(rkey(cl, "invoice:%s:payments" % inv1))
    sv(cl, res, "payment", "record", inv1, "--amount", total - 7000 + 1, "--method", "card", want=2)
    after = cl.redis().hgetall(rkey(cl, "invoice:" + inv1))
    res.check(before == after and cl.redis().llen(rkey(cl, "invoice:%s:payments" % inv1)) == npay,
              "a refused overpayment changed invoice %s" % inv1)
    d = sv(cl, res, "payment", "record", inv1, "--amount", total - 7000, "--method", "transfer") or {}
    res.check(d.get("balance_cents") == 0 and d.get("status") == "paid", "final payment on %s: %r" % (inv1, d))
    inv = sv(cl, res, "invoice", "show", inv1) or {}
    res.check(inv.get("paid_cents") == total and inv.get("status") == "paid" and
              [p.get("amount_cents") for p in inv.get("payments", [])] == [5000, 2000, total - 7000],
              "invoice %s after payments: paid %r status %r payments %r" % (
                  inv1, inv.get("paid_cents"), inv.get("status"), inv.get("payments")))
    res.check(cl.redis().zscore(rkey(cl, "invoices:unpaid"), inv1) is None, "%s still in invoices:unpaid" % inv1)
    d = sv(cl, res, "ticket", "pickup", t1) or {}
    res.check(d.get("state") == "closed", "pickup of %s after payment: %r" % (t1, d))
    sv(cl, res, "payment", "record", inv1, "--amount", 1, "--method", "cash", want=2)

    # Credit notes on an unpaid invoice: --amount then --full, continuous AV numbers, never above the total.
    t2, inv2 = shop.invoiced(consumer)
    d1 = sv(cl, res, "invoice", "credit", inv2, "--amount", 1000, "--reason", "geste commercial",
            "--request-id", "cr-1") or {}
    res.check(d1.get("id") == "AV-%d-000001" % year and d1.get("amount_cents") == 1000,
              "first credit note: %r, want AV-%d-000001 of 1000" % (d1, year))
    d = sv(cl, res, "invoice", "credit", inv2, "--amount", 1000, "--reason", "geste commercial",
           "--request-id", "cr-1") or {}
    res.check(d.get("id") == d1.get("id") and d.get("replayed") is True, "credit replay: %r" % d)
    inv = sv(cl, res, "invoice", "show", inv2) or {}
    res.check(inv.get("credited_cents") == 1000 and inv.get("balance_cents") == total - 1000 and
              inv.get("status") == "unpaid", "invoice %s after a 1000 credit: credited %r balance %r status %r" % (
                  inv2, inv.get("credited_cents"), inv.get("balance_cents"), inv.get("status")))
    sv(cl, res, "invoice", "credit", inv2, "--amount", total - 1000 + 1, "--reason", "trop", want=2)
    d2 = sv(cl, res, "invoice", "credit", inv2, "--full", "--reason", "annulation") or {}
    res.check(d2.get("id") == "AV-%d-000002" % year and d2.get("amount_cents") == total - 1000,
              "full credit: %r, want AV-%d-000002 of %d" % (d2, year, total - 1000))
    sv(cl, res, "invoice", "credit", inv2, "--amount", 1, "--reason", "encore", want=2)
    sv(cl, res, "invoice", "credit", inv2, "--full", "--reason", "encore", want=2)
    inv = sv(cl, res, "invoice", "show", inv2) or {}
    res.check(inv.get("credited_cents") == total and inv.get("balance_cents") == 0 and
              inv.get("status") == "credited", "invoice %s fully credited: credited %r balance %r status %r" % (
                  inv2, inv.get("credited_cents"), inv.get("balance_cents"), inv.get("status")))
    credits = cl.redis().zrange(rkey(cl, "credits"), 0, -1)
    res.check(sorted(credits) == ["AV-%d-000001" % year, "AV-%d-000002" % year] and
              cl.redis().get(rkey(cl, "seq:credit:%d" % year)) == "2",
              "credit notes %s seq %r" % (credits, cl.redis().get(rkey(cl, "seq:credit:%d" % year))))
    amounts = sum(int(cl.redis().hget(rkey(cl, "credit:" + c), "amount_cents") or 0) for c in credits)
    res.check(amounts == total, "sum of credit notes %d, want the invoice total %d" % (amounts, total))
    d = sv(cl, res, "ticket", "pickup", t2) or {}
    res.check(d.get("state") == "closed", "pickup of %s with a fully credited invoice: %r" % (t2, d))
    res.fig("credits", len(credits))

    # Export: consumer and business.
    d = sv(cl, res, "invoice", "export", inv1) or {}
    text = d.get("text", "")
    for s in (SELLER_SIRET, "TVA", "Total TTC", inv1, today.isoformat(), "113,58"):
        res.check(s in text, "invoice export %s lacks %r" % (inv1, s))
    res.check("indemnité forfaitaire" not in text, "a consumer invoice export mentions the B2B indemnity")
    t3, inv3 = shop.invoiced(business)
    inv = sv(cl, res, "invoice", "show", inv3) or {}
    due = (today + datetime.timedelta(days=BUSINESS_PAYMENT_DAYS)).isoformat()
    res.check(inv.get("customer_type") == "business" and inv.get("due_on") == due,
              "business invoice %s: type %r due %r, want business due %s" % (inv3, inv.get("customer_type"),
                                                                              inv.get("due_on"), due))
    d = sv(cl, res, "invoice", "export", inv3) or {}
    text = d.get("text", "")
    for s in (SELLER_SIRET, "TVA", "Total TTC", due, "indemnité forfaitaire", "10 points", "40,00"):
        res.check(s in text, "business invoice export %s lacks %r" % (inv3, s))
    # A business pays on its terms: the pickup is not gated.
    d = sv(cl, res, "ticket", "pickup", t3) or {}
    res.check(d.get("state") == "closed", "pickup of business ticket %s with an invoice not yet due: %r" % (t3, d))
    sv(cl, res, "invoice", "show", "FAC-%d-999999" % year, want=3)
    sv(cl, res, "payment", "record", "FAC-%d-999999" % year, "--amount", 100, "--method", "card", want=3)
    sv(cl, res, "invoice", "credit", "FAC-%d-999999" % year, "--amount", 100, "--reason", "erreur", want=3)
    lst = sv(cl, res, "invoice", "list", "--status", "credited") or {}
    res.check([i.get("id") for i in lst.get("invoices", [])] == [inv2], "invoice list --status credited: %r" % (
        [i.get("id") for i in lst.get("invoices", [])],))
    # A customer's invoices come from their own index, newest first, filters still applied.
    for args, want in ((("--customer", consumer), [inv2, inv1]), (("--customer", business), [inv3]),
                       (("--customer", consumer, "--status", "paid"), [inv1]),
                       (("--customer", consumer, "--limit", "1"), [inv2]),
                       (("--customer", "C-999999"), []), (("--status", "unpaid"), [inv3])):
        lst = sv(cl, res, "invoice", "list", *args) or {}
        got = [i.get("id") for i in lst.get("invoices", [])]
        res.check(got == want and lst.get("truncated") is False, "invoice list %s: %r truncated %r, want %r" % (
            " ".join(args), got, lst.get("truncated"), want))
    sv(cl, res, "invoice", "list", "--status", "settled", want=2, err_has="status")
    sv(cl, res, "invoice", "list", "--customer", "C 1", want=2, err_has="customer id")

    # Billing away when the repair is done: the consumer cannot take the product before the invoice exists.
    t4 = shop.accepted(consumer)
    cl.stop_service("billing")
    sv(cl, res, "repair", "done", t4)
    res.check(wait_state(cl, t4, "ready", 15), "%s not ready with billing away" % t4)
    sv(cl, res, "ticket", "pickup", t4, want=2, err_has="has not issued its repair invoice")
    res.check(tstate(cl, t4) == "ready", "%s state %s after a pickup refused for want of its invoice" % (
        t4, tstate(cl, t4)))
    cl.start_service("billing")
    cl.wait_service("billing")
    inv4 = harness.wait_until(lambda: hget(cl, "ticket:" + t4, "invoice_id"), 15, 0.05)
    res.check(inv4, "no invoice for %s once billing is back" % t4)
    if inv4:
        sv(cl, res, "ticket", "pickup", t4, want=2, err_has="unpaid")
        sv(cl, res, "payment", "record", inv4, "--amount", total, "--method", "card")
        d = sv(cl, res, "ticket", "pickup", t4) or {}
        res.check(d.get("state") == "closed", "pickup of %s once invoiced and paid: %r" % (t4, d))
    check_drained(cl, res)


# ================================================================ 5. reminders_and_penalties

@collecting
def test_reminders_and_penalties(cl, res):
    write_config(cl, {"intake": [("scheduler_ms", "200")], "billing": [("payment_reminder_days", "7,15,30")]})
    cl.start_all()
    stock_up(cl, res)
    shop = Shop(cl, res, "r")
    consumer = shop.customer(name="Jeanne Martin")
    business = shop.customer(name="Garage Durand SARL", business=SIREN)
    tc, invc = shop.invoiced(consumer)
    tb, invb = shop.invoiced(business)
    balance = 11358
    t0 = time.monotonic()

    def reminders(tid):
        return sorted(notif_ids(cl, tid, "payment_reminder"))

    # +8 days: one reminder (version 1) for the consumer; the business invoice is not due yet.
    restart_billing(cl, 8)
    res.check(harness.wait_until(lambda: reminders(tc), 10, 0.05), "no payment_reminder for %s at +8 days" % tc)
    time.sleep(1.2)
    res.check(reminders(tc) == ["%s:payment_reminder:sms:1" % tc], "payment reminders at +8 days: %s, want "
              "version 1 only" % reminders(tc))
    res.check(reminders(tb) == [], "business invoice (due in 30 days) got reminders at +8 days: %s" % reminders(tb))
    res.check(hget(cl, "invoice:" + invc, "reminder_level") == "1", "reminder_level %r at +8 days" % hget(
        cl, "invoice:" + invc, "reminder_level"))
    lst = sv(cl, res, "invoice", "list", "--overdue") or {}
    res.check([i.get("id") for i in lst.get("invoices", [])] == [invc], "invoice list --overdue at +8 days: %s, "
              "want [%s]" % ([i.get("id") for i in lst.get("invoices", [])], invc))
    lat = (sv(cl, res, "invoice", "show", invc) or {}).get("lateness") or {}
    res.check(lat == {"days_late": 8, "formal_notice_on": "none", "interest_cents": 0},
              "consumer lateness at +8 days: %r, want days_late 8, no notice, interest 0, no penalties" % lat)

    # +31 days: only the latest due reminder (version 3), then the formal notice.
    restart_billing(cl, 31)
    res.check(harness.wait_until(lambda: notif_ids(cl, tc, "formal_notice"), 10, 0.05),
              "no formal_notice for %s at +31 days" % tc)
    time.sleep(1.2)
    want = ["%s:payment_reminder:sms:1" % tc, "%s:payment_reminder:sms:3" % tc]
    res.check(reminders(tc) == want, "payment reminders at +31 days: %s, want %s (no version 2)" % (
        reminders(tc), want))
    res.check(notif_ids(cl, tc, "formal_notice") == ["%s:formal_notice:sms:1" % tc], "formal notices: %s" %
              notif_ids(cl, tc, "formal_notice"))
    notice_on = paris_date(31 * DAY_MS).isoformat()
    inv = sv(cl, res, "invoice", "show", invc) or {}
    res.check(inv.get("formal_notice") == "1" and inv.get("formal_notice_on") == notice_on,
              "invoice %s at +31 days: formal_notice %r formal_notice_on %r, want '1' %s" % (
                  invc, inv.get("formal_notice"), inv.get("formal_notice_on"), notice_on))
    lat = inv.get("lateness") or {}
    res.check(lat == {"days_late": 31, "formal_notice_on": notice_on, "interest_cents": 0},
              "consumer lateness at +31 days: %r" % lat)
    counts = (len(notif_ids(cl, tc)), len(cl.redis().lrange(rkey(cl, "timeline:" + tc), 0, -1)),
              cl.redis().xlen(rkey(cl, "outbox:notification")))
    restart_billing(cl, 31)
    time.sleep(1.5)
    counts2 = (len(notif_ids(cl, tc)), len(cl.redis().lrange(rkey(cl, "timeline:" + tc), 0, -1)),
               cl.redis().xlen(rkey(cl, "outbox:notification")))
    res.check(counts2[:2] == counts[:2], "restart at the same offset (+31) added notifications/timeline entries: "
              "%s -> %s" % (counts[:2], counts2[:2]))
    res.check(reminders(tb) == [], "business invoice got reminders at +31 days (1 day late): %s" % reminders(tb))

    # +40 days: business invoice 10 days late: B3 penalties and the EUR 40 indemnity; consumer: interest only.
    restart_billing(cl, 40)
    inv = sv(cl, res, "invoice", "show", invb) or {}
    lat = inv.get("lateness") or {}
    rate = ECB_BP + POINTS_BP
    exact = fractions.Fraction(balance * 10 * rate, 10000 * 365)
    want_pen = half_up(exact)
    code_way = ((balance * 10 * rate + 5000) // 10000) // 365  # money_apply_rate then an integer division by 365
    res.fig("penalty_cents", "%s (exact %.3f, nearest %d, code's formula %d)" % (
        lat.get("penalty_cents"), float(exact), want_pen, code_way))
    res.check(lat.get("days_late") == 10 and lat.get("penalty_rate_bp") == 1400 and
              lat.get("recovery_indemnity_cents") == INDEMNITY_CENTS,
              "business lateness at +40 days: %r, want days_late 10, penalty_rate_bp 1400, indemnity 4000" % lat)
    res.check(lat.get("penalty_cents") == want_pen,
              "business penalty at +40 days on %d cents: penalty_cents %r, want %d (%d x 10 days x 14 %% / 365 = "
              "%.4f cents, to the nearest cent; the code's money_apply_rate(..)/365 truncates to %d)" % (
                  balance, lat.get("penalty_cents"), want_pen, balance, float(exact), code_way))
    lat = (sv(cl, res, "invoice", "show", invc) or {}).get("lateness") or {}
    days = 40 - 31
    exact_i = fractions.Fraction(balance * days * LEGAL_INTEREST_BP, 10000 * 365)
    res.check(set(lat) == {"days_late", "formal_notice_on", "interest_cents"} and lat.get("days_late") == 40 and
              lat.get("interest_cents") == half_up(exact_i),
              "consumer lateness at +40 days: %r, want days_late 40, interest_cents %d (%d days since the notice at "
              "7.92 %%), no penalty or indemnity" % (lat, half_up(exact_i), days))
    res.check(harness.wait_until(lambda: reminders(tb), 10, 0.05) and
              reminders(tb) == ["%s:payment_reminder:sms:1" % tb],
              "business reminders at +40 days (10 days late): %s, want version 1" % reminders(tb))
    res.fig("reminders_s", round(time.monotonic() - t0, 1))
    restart_billing(cl)
    check_drained(cl, res)


# ================================================================ 6. warranty_claims

@collecting
def test_warranty_claims(cl, res):
    cl.start_all()
    stock_up(cl, res)
    shop = Shop(cl, res, "w")
    cid = shop.customer(name="Jeanne Martin")
    delivered = (paris_date() - datetime.timedelta(days=200)).isoformat()
    tids = []
    for _ in range(2):
        tid = shop.ticket(cid, "PAR-01", delivered=delivered)
        d = shop.diagnose(tid, cause="manufacturing", want_state="in_diagnosis")
        cov = (d or {}).get("coverage") or {}
        res.check(cov.get("basis") == "legal_conformity" and cov.get("customer_pays") is False,
                  "diagnose %s (manufacturing, delivered %s): coverage %r" % (tid, delivered, cov))
        sv(cl, res, "repair", "start", tid)
        d = sv(cl, res, "repair", "done", tid) or {}
        res.check(d.get("state") == "ready", "repair done %s: %r" % (tid, d))
        tids.append(tid)
    res.check(harness.wait_until(lambda: cl.redis().zcard(rkey(cl, "claims")) >= 2, 15, 0.05),
              "%d claims after two free repairs, want 2" % cl.redis().zcard(rkey(cl, "claims")))
    res.check(not harness.wait_until(lambda: raw(cl, "quote", "show", tids[0])[0] == 0, 0.1),
              "a free repair has a quote")
    labour = half_up(fractions.Fraction(45 * WARRANTY_LABOUR_RATE, 60))
    res.check((PART_CENTS, labour, PART_CENTS + labour) == (4590, 3375, 7965), "test arithmetic: claim")
    lst = sv(cl, res, "claim", "list") or {}
    claims = {c.get("ticket"): c for c in lst.get("claims", [])}
    res.check(sorted(c.get("id") for c in claims.values()) == ["WC-000001", "WC-000002"],
              "claim ids %s, want WC-000001, WC-000002" % sorted(c.get("id") for c in claims.values()))
    c1 = claims.get(tids[0]) or {}
    res.check(c1.get("id") == "WC-000001" and c1.get("status") == "submitted" and c1.get("parts_cents") == 4590 and
              c1.get("labour_minutes") == 45 and c1.get("labour_cents") == 3375 and c1.get("total_cents") == 7965 and
              c1.get("basis") == "legal_conformity" and c1.get("serial") and c1.get("centre") == "PAR-01",
              "claim of %s: %r, want WC-000001 submitted parts 4590 labour 45 min 3375 total 7965 legal_conformity" % (
                  tids[0], c1))
    res.check(lst.get("count") == 2 and lst.get("total_cents") == 2 * 7965, "claim list count %r total %r" % (
        lst.get("count"), lst.get("total_cents")))
    res.check(cl.redis().zcard(rkey(cl, "invoices")) == 0, "a free repair was invoiced: %s" % cl.redis().zrange(
        rkey(cl, "invoices"), 0, -1))
    # A duplicate TicketReady (another message id) makes no second claim.
    s = ready_sender(cl, zmq.Context.instance())
    try:
        mid = "bt-claim-dup-" + uuid.uuid4().hex[:8]
        rep = send_ready(s, tids[0], mid)
    finally:
        s.close(0)
    res.check(rep[0] == MT_EVENT_ACK and rep[1] == mid and rep[2] == ACK, "duplicate TicketReady answer %r" % (rep,))
    res.check(cl.redis().zcard(rkey(cl, "claims")) == 2, "%d claims after a duplicate TicketReady, want 2" %
              cl.redis().zcard(rkey(cl, "claims")))
    # Transitions.
    d = sv(cl, res, "claim", "approve", "WC-000001") or {}
    res.check(d.get("status") == "approved", "claim approve WC-000001: %r" % d)
    sv(cl, res, "claim", "reject", "WC-000001", "--reason", "hors garantie", want=2)
    d = sv(cl, res, "claim", "pay", "WC-000001") or {}
    res.check(d.get("status") == "paid", "claim pay WC-000001: %r" % d)
    sv(cl, res, "claim", "pay", "WC-000002", want=2)
    rc, _, err = raw(cl, "claim", "reject", "WC-000002")  # a rejection needs a reason
    res.check(rc in (1, 2) and hget(cl, "claim:WC-000002", "status") == "submitted",
              "claim reject WC-000002 without --reason: exit %d %r, status %r" % (
                  rc, err, hget(cl, "claim:WC-000002", "status")))
    d = sv(cl, res, "claim", "reject", "WC-000002", "--reason", "pièce non retournée") or {}
    res.check(d.get("status") == "rejected", "claim reject WC-000002: %r" % d)
    sv(cl, res, "claim", "approve", "WC-000002", want=2)
    sv(cl, res, "claim", "approve", "WC-000009", want=3)
    lst = sv(cl, res, "claim", "list", "--status", "paid") or {}
    res.check([c.get("id") for c in lst.get("claims", [])] == ["WC-000001"] and lst.get("total_cents") == 7965,
              "claim list --status paid: %r" % (([c.get("id") for c in lst.get("claims", [])], lst.get("total_cents")),))
    lst = sv(cl, res, "claim", "list", "--status", "rejected") or {}
    res.check([c.get("id") for c in lst.get("claims", [])] == ["WC-000002"], "claim list --status rejected: %r" % (
        [c.get("id") for c in lst.get("claims", [])],))
    res.fig("claims", 2)
    check_drained(cl, res, 10)


TESTS = [
    ("quote_totals_and_transitions", test_quote_totals_and_transitions),
    ("invoice_numbering_concurrent", test_invoice_numbering_concurrent),
    ("invoice_numbering_sigkill", test_invoice_numbering_sigkill),
    ("payments_credits", test_payments_credits),
    ("reminders_and_penalties", test_reminders_and_penalties),
    ("warranty_claims", test_warranty_claims),
]


# ---------------------------------------------------------------- standalone runner

if __name__ == "__main__":
    sys.exit(fixtures.standalone(TESTS, __doc__))
