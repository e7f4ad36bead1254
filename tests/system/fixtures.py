"""Shared pieces of the SAV system tests: results, dates on the Paris calendar, savctl calls that record what
went wrong, and the records every ticket needs (a customer, then a product, then the ticket).

Since issue 3, `savctl ticket open` takes a registered customer (C-NNNNNN) and a registered product (serial):
the helpers here create them with `savctl customer add` and `savctl product add` and work out which
notifications each customer must get: sms if a phone and consent to sms, email if an e-mail and consent to
email, else one "call" notification (status call_customer, recipient the customer id) that the centre reads out.
"""

import argparse
import calendar
import collections
import concurrent.futures
import datetime
import json
import os
import sys
import time
import traceback
from zoneinfo import ZoneInfo

import harness
from harness import HarnessError

PARIS = ZoneInfo("Europe/Paris")
DAY_MS = 86400 * 1000
OUTBOXES = ("outbox:diagnostics", "outbox:billing", "outbox:notification")
WORKERS = 4  # parallel savctl invocations (the machine has 2 cores)
CATALOG_PATH = os.path.join(harness.REPO_ROOT, "deploy", "local", "catalog.json")
SIREN = "732829320"          # a valid SIREN (Luhn key)
SIRET = "73282932000074"     # a valid SIRET of that SIREN
DIAGNOSIS_KINDS = ("repair", "assistance")
NO_DIAGNOSIS_KINDS = ("installation", "commissioning", "preventive_maintenance")
KINDS = DIAGNOSIS_KINDS + NO_DIAGNOSIS_KINDS


class Result:
    """What one test found: figures to print and problems (any problem fails the test)."""

    def __init__(self):
        self.figures = collections.OrderedDict()
        self.problems = []

    def check(self, cond, msg):
        if not cond:
            self.problems.append(msg)
        return bool(cond)

    def fig(self, name, value):
        self.figures[name] = value


def pmap(fn, items, workers=WORKERS):
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as ex:
        return list(ex.map(fn, items))


def load_catalog():
    with open(CATALOG_PATH, encoding="utf-8") as f:
        return json.load(f)


# ---------------------------------------------------------------- dates (Europe/Paris calendar, like the services)

def today(offset_days=0):
    """The Paris date of now + offset_days (the services store dates on the Europe/Paris calendar)."""
    return (datetime.datetime.now(PARIS) + datetime.timedelta(days=offset_days)).date()


def add_days(d, n):
    return d + datetime.timedelta(days=n)


def add_months(d, n):
    """d plus n months, the day clamped to the month's length (as common/clock.c does)."""
    total = d.year * 12 + d.month - 1 + n
    y, m = divmod(total, 12)
    return datetime.date(y, m + 1, min(d.day, calendar.monthrange(y, m + 1)[1]))


FR_MONTHS = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
             "novembre", "décembre"]
EN_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
             "November", "December"]


def spoken_date(d, lang):
    """A date as the customer's messages write it: "1er décembre 2026", "1 December 2026"."""
    if lang == "en":
        return "%d %s %d" % (d.day, EN_MONTHS[d.month - 1], d.year)
    return "%d%s %s %d" % (d.day, "er" if d.day == 1 else "", FR_MONTHS[d.month - 1], d.year)


# ---------------------------------------------------------------- savctl with bookkeeping

def run(cl, res, *args, want=0, err_has=None, env=None):
    """Runs `savctl --json ARGS`; records a problem unless it exits `want` (and, when given, unless stderr
    contains every string of err_has). Returns the parsed JSON (exit 0) or None."""
    try:
        r = cl.savctl(*args, json_out=True, env=env)
    except HarnessError as e:
        res.check(False, "savctl %s: %s" % (" ".join(map(str, args)), e))
        return None
    cmd = "savctl %s" % " ".join(map(str, args))
    ok = res.check(r.returncode == want, "%s: exit %d, want %d (stderr %r)" % (cmd, r.returncode, want,
                                                                             r.stderr.strip()[:300]))
    if ok and err_has:
        for s in ([err_has] if isinstance(err_has, str) else err_has):
            res.check(s in r.stderr, "%s: stderr %r does not say %r" % (cmd, r.stderr.strip()[:300], s))
    if r.returncode != 0:
        return None
    try:
        return json.loads(r.stdout)
    except ValueError:
        res.check(False, "%s printed invalid JSON: %r" % (cmd, r.stdout[:300]))
        return None


def show(cl, tid):
    """`savctl --json ticket show` as a dict (HarnessError when it fails)."""
    r, data = cl.savctl_json("ticket", "show", tid)
    if r.returncode != 0 or not isinstance(data, dict):
        raise HarnessError("ticket show %s: exit %d %s" % (tid, r.returncode, r.stderr.strip()))
    return data


def wait_notifs(cl, tid, n, timeout=15):
    """Waits until the ticket has at least n notifications recorded (LLEN notifs:<T>); returns the count."""
    key = cl.key("notifs:" + tid)
    harness.wait_until(lambda: cl.redis().llen(key) >= n, timeout, 0.02)
    return cl.redis().llen(key)


def outboxes_empty(cl):
    r = cl.redis()
    return not any(r.xlen(cl.key(ob)) for ob in OUTBOXES)


def wait_drained(cl, timeout=15):
    """Waits until every outbox is empty; returns True if it happened."""
    return bool(harness.wait_until(lambda: outboxes_empty(cl), timeout, 0.05))


def check_drained(cl, res):
    r = cl.redis()
    depths = {ob: r.xlen(cl.key(ob)) for ob in OUTBOXES}
    dead = r.xlen(cl.key("deadletter"))
    res.check(not any(depths.values()), "outboxes not drained: %s" % depths)
    res.check(dead == 0, "%d dead letter(s): %s" % (dead, r.xrange(cl.key("deadletter"), count=3)))
    res.fig("outbox_left", sum(depths.values()))
    res.fig("dead_letters", dead)


# ---------------------------------------------------------------- customers

class Customer:
    """A customer to register, and the notification routes SAV must use for them."""

    def __init__(self, name, lang="fr", phone=None, phone_e164=None, email=None, business=None, consent=None):
        self.name, self.lang, self.phone, self.email = name, lang, phone, email
        self.phone_e164 = phone_e164 if phone_e164 is not None else phone
        self.business, self.consent = business, consent
        self.id = None

    def args(self):
        a = ["customer", "add", "--name", self.name, "--lang", self.lang]
        if self.phone is not None:
            a += ["--phone", self.phone]
        if self.email is not None:
            a += ["--email", self.email]
        if self.business:
            a += ["--business", self.business]
        if self.consent is not None:
            a += ["--consent", self.consent]
        return a

    def routes(self):
        """{channel: (recipient, status)} of every notification event for this customer."""
        consent = set((self.consent if self.consent is not None else "sms,email").split(","))
        out = {}
        if self.phone and "sms" in consent:
            out["sms"] = (self.phone_e164, "recorded")
        if self.email and "email" in consent:
            out["email"] = (self.email, "recorded")
        if not out:
            out["call"] = (self.id, "call_customer")
        return out


def add_customer(cl, res, c, request_id=None):
    """Registers c; sets c.id. Returns the id or None (problem recorded)."""
    args = c.args() + (["--request-id", request_id] if request_id else [])
    data = run(cl, res, *args)
    if data:
        res.check(data.get("replayed") is False and str(data.get("id", "")).startswith("C-"),
                  "customer add %s: reply %r" % (c.name, data))
        c.id = data.get("id")
    return c.id


def add_product(cl, res, serial, model, customer_id, delivered, second_hand=False, bought_at=None,
                request_id=None):
    args = ["product", "add", "--serial", serial, "--model", model, "--customer", customer_id,
            "--delivered", delivered.isoformat() if hasattr(delivered, "isoformat") else delivered]
    if second_hand:
        args.append("--second-hand")
    if bought_at:
        args += ["--bought-at", bought_at]
    if request_id:
        args += ["--request-id", request_id]
    data = run(cl, res, *args)
    if data:
        res.check(data.get("id") == serial and data.get("replayed") is False, "product add %s: reply %r" % (
            serial, data))
        return serial
    return None


def open_args(customer_id, serial, kind="repair", symptom="Ne chauffe plus", channel=None, centre=None,
              faults=(), requested_on=None):
    args = ["ticket", "open", "--customer", customer_id, "--serial", serial, "--kind", kind, "--symptom", symptom]
    if channel:
        args += ["--channel", channel]
    if centre:
        args += ["--centre", centre]
    for f in faults:
        args += ["--fault", f]
    if requested_on:
        args += ["--requested-on", requested_on.isoformat() if hasattr(requested_on, "isoformat") else requested_on]
    return args


def open_ticket(cl, res, *args, **kw):
    """Opens a ticket; returns its id or None (problem recorded)."""
    data = run(cl, res, *args, **kw)
    if data:
        res.check(data.get("state") == "received" and data.get("replayed") is False,
                  "ticket open reply %r, want state received, replayed false" % data)
        return data.get("id")
    return None


# ---------------------------------------------------------------- varied tickets for the flow and crash tests

FR_NAMES = ["Élodie Martin", "Jean-François Dupré", "Chloé Lefèvre", "Noël Garçon", "Anaïs Rousseau"]
EN_NAMES = ["Alice Smith", "Bob O'Brien", "Carol Jones", "Dave Brown", "Zoë Taylor"]
MODELS = ["WM-7000", "WM-7000", "DW-450", "FR-300", "OV-900", "BO-24"]
CHANNELS = ["drop_off", "on_site", "phone", "web"]
CENTRES = [None, "PAR-01", "LYO-01", "REP-BDX-07"]
DELIVERED_DAYS_AGO = [150, 400, 800, 1500, 3000]


class TicketSpec:
    """One varied ticket: its customer, its product and its `ticket open` options; what it must end up with."""

    def __init__(self, i, prefix):
        self.i = i
        self.lang = "fr" if i % 2 == 0 else "en"
        name = (FR_NAMES if self.lang == "fr" else EN_NAMES)[i % 5]
        contact = i % 6  # 0 phone, 1 email, 2 both, 3 both but one consent, 4 neither, 5 both, consent none
        national = "61%07d" % (i % 10000000)
        e164 = "+33" + national
        phone = email = consent = None
        if contact in (0, 2, 3, 5):
            phone = [e164, "0%s %s %s %s %s" % (national[0], national[1:3], national[3:5], national[5:7],
                                                national[7:9]), "+33 " + national][i % 3]
        if contact in (1, 2, 3, 5):
            email = "client%d.%s@example.com" % (i, prefix)
        if contact == 3:
            consent = "email" if i % 4 == 1 else "sms,marketing"
        if contact == 5:
            consent = "none"
        business = (SIREN if i % 2 else SIRET) if i % 11 == 5 else None
        self.customer = Customer(name, self.lang, phone, e164 if phone else None, email, business, consent)
        self.serial = "SN%s%06d" % (prefix.upper(), i)
        self.model = MODELS[i % len(MODELS)]
        self.delivered = today(-DELIVERED_DAYS_AGO[i % len(DELIVERED_DAYS_AGO)])
        self.second_hand = i % 7 == 3
        self.bought_at = "Boulanger Lyon" if i % 9 == 4 else None
        self.kind = "repair" if i % 10 < 7 else ("assistance" if i % 10 == 7 else "installation")
        self.channel = CHANNELS[i % len(CHANNELS)]
        self.centre = CENTRES[i % len(CENTRES)]
        self.faults = [["E21"], ["Z99"], ["E21", "Z99"], []][i % 4]
        self.symptom = "Ne chauffe plus, code affiché" if self.lang == "fr" else "Does not heat, shows a code"
        # After the pipeline: diagnosis kinds are in_diagnosis, the others stay received.
        self.state = "in_diagnosis" if self.kind in DIAGNOSIS_KINDS else "received"
        self.prefix = prefix

    def open_args(self):
        return open_args(self.customer.id, self.serial, self.kind, self.symptom, self.channel, self.centre,
                         self.faults)

    def expect(self):
        return Expect(self.customer.routes(), self.lang, self.state)


Expect = collections.namedtuple("Expect", "routes lang state")


def register(cl, res, specs):
    """customer add + product add for every spec (in parallel, with request ids); returns the specs that are
    ready to be opened. Figures: customers, products."""
    def one(s):
        try:
            if not add_customer(cl, res, s.customer, "cust-%s-%d" % (s.prefix, s.i)):
                return None
            if not add_product(cl, res, s.serial, s.model, s.customer.id, s.delivered, s.second_hand, s.bought_at,
                               "prod-%s-%d" % (s.prefix, s.i)):
                return None
            return s
        except HarnessError as e:
            res.check(False, "registering %s: %s" % (s.serial, e))
            return None
    ready = [s for s in pmap(one, specs) if s]
    res.check(len(ready) == len(specs), "%d of %d customers/products could not be registered" % (
        len(specs) - len(ready), len(specs)))
    return ready


def redis_progress(cl, expected):
    """One pipelined look at Redis: ({tid: LLEN notifs}, {outbox: XLEN}, deadletter XLEN)."""
    r = cl.redis()
    tids = list(expected)
    p = r.pipeline(transaction=False)
    for tid in tids:
        p.llen(cl.key("notifs:" + tid))
    for ob in OUTBOXES:
        p.xlen(cl.key(ob))
    p.xlen(cl.key("deadletter"))
    out = p.execute()
    n = len(tids)
    return dict(zip(tids, out[:n])), dict(zip(OUTBOXES, out[n:n + len(OUTBOXES)])), out[-1]


def wait_quiescent(cl, expected, timeout):
    """Waits (bounded) until every ticket has at least its expected notifications and all outboxes are empty.
    expected: {tid: Expect}. Returns (seconds waited, reached)."""
    t0 = time.monotonic()
    def done():
        try:
            notifs, outboxes, _ = redis_progress(cl, expected)
        except Exception:
            return False
        return all(notifs[t] >= len(e.routes) for t, e in expected.items()) and not any(outboxes.values())
    ok = harness.wait_until(done, timeout, 0.2)
    return time.monotonic() - t0, bool(ok)


def verify_tickets(cl, res, expected):
    """Checks every ticket through `savctl ticket show` and Redis: state, pre-diagnosis, coverage, and exactly one
    ticket_received notification per route of its customer (recipient, status, language).
    expected: {tid: Expect}. Returns counters: missing, incomplete, losses, duplicates, wrong, notifications."""
    tids = sorted(expected)
    def show_one(tid):
        try:
            return tid, cl.savctl_json("ticket", "show", tid)
        except HarnessError as e:
            return tid, (None, str(e))
    shown = dict(pmap(show_one, tids))
    notifs, _, _ = redis_progress(cl, expected)
    c = collections.Counter()
    statuses = collections.Counter()
    for tid in tids:
        r, data = shown[tid]
        exp = expected[tid]
        if r is None or r.returncode != 0 or not isinstance(data, dict):
            c["missing"] += 1
            res.check(False, "%s: ticket show failed: %s" % (tid, data if r is None else
                                                             "exit %d %s" % (r.returncode, r.stderr.strip())))
            continue
        problems = []
        if data.get("id") != tid:
            problems.append("id %r" % data.get("id"))
        if data.get("state") != exp.state:
            problems.append("state %r, want %r" % (data.get("state"), exp.state))
        if not isinstance(data.get("prediagnosis"), dict) or not data["prediagnosis"]:
            problems.append("prediagnosis %r" % data.get("prediagnosis"))
        if not isinstance(data.get("coverage"), dict) or not data["coverage"]:
            problems.append("coverage %r" % data.get("coverage"))
        if problems:
            c["incomplete"] += 1
        nl = data.get("notifications")
        if not isinstance(nl, list):
            problems.append("notifications %r" % nl)
            nl = []
        want = exp.routes
        per_channel = collections.Counter((n.get("event"), n.get("channel")) for n in nl)
        lost = dup = 0
        for ch in want:
            got = per_channel.get(("ticket_received", ch), 0)
            lost += got == 0
            dup += max(0, got - 1)
        others = [k for k in per_channel if k[0] != "ticket_received" or k[1] not in want]
        if others:
            problems.append("unexpected notifications %s" % sorted(map(str, others)))
        extra_other = sum(per_channel[k] for k in others)
        if lost:
            c["losses"] += lost
            problems.append("%d notification(s) lost (want %s, got %s)" % (lost, sorted(want), dict(per_channel)))
        if dup:
            c["duplicates"] += dup
            problems.append("%d duplicate notification(s): %s" % (dup, dict(per_channel)))
        c["notifications"] += len(nl)
        for n in nl:
            statuses[n.get("status")] += 1
            ch = n.get("channel")
            if ch in want and (n.get("recipient"), n.get("status")) != want[ch]:
                problems.append("%s recipient/status %r, want %r" % (ch, (n.get("recipient"), n.get("status")),
                                                                     want[ch]))
            if n.get("lang") != exp.lang:
                problems.append("%s lang %r, want %r" % (ch, n.get("lang"), exp.lang))
            if not n.get("body"):
                problems.append("%s notification with an empty body" % ch)
        if notifs[tid] != len(want) or notifs[tid] != len(nl):
            problems.append("LLEN %s = %d, want %d (show lists %d)" % (
                cl.key("notifs:" + tid), notifs[tid], len(want), len(nl)))
            if notifs[tid] > len(want) and not dup and not extra_other:
                c["duplicates"] += notifs[tid] - len(want)
        if problems:
            c["wrong"] += 1
            res.check(False, "%s: %s" % (tid, "; ".join(problems)))
    res.fig("notif_status", dict(statuses))
    return c


def route_counts(expected):
    """Figures: how many tickets notify by sms, email, call."""
    n = collections.Counter()
    for e in expected.values():
        n.update(e.routes.keys())
    return dict(n)


# ---------------------------------------------------------------- notification and timeline checks

def notifs_of(data, event):
    """The ticket's notifications of one event, as {channel: [notification, ...]}."""
    out = collections.defaultdict(list)
    for n in data.get("notifications") or []:
        if n.get("event") == event:
            out[n.get("channel")].append(n)
    return out


def check_event_notifs(res, tid, data, event, routes, version=1, contains=(), lang=None, count=1):
    """Checks that `event` was notified exactly `count` times per route (recipient, status), that the latest has
    the version in its id and that each notification of that version contains every string of `contains`."""
    got = notifs_of(data, event)
    ok = res.check(set(got) == set(routes), "%s: %s notified on %s, want %s" % (
        tid, event, sorted(got), sorted(routes)))
    for ch, (recipient, status) in routes.items():
        lst = got.get(ch, [])
        ok &= res.check(len(lst) == count, "%s: %d %s notification(s) on %s, want %d: %s" % (
            tid, len(lst), event, ch, count, [n.get("id") for n in lst]))
        for n in lst:
            ok &= res.check((n.get("recipient"), n.get("status")) == (recipient, status),
                            "%s: %s %s recipient/status %r, want %r" % (tid, event, ch, (n.get("recipient"),
                                                                         n.get("status")), (recipient, status)))
            if lang:
                ok &= res.check(n.get("lang") == lang, "%s: %s %s lang %r, want %r" % (tid, event, ch,
                                                                                       n.get("lang"), lang))
        want_id = "%s:%s:%s:%d" % (tid, event, ch, version)
        latest = [n for n in lst if n.get("id") == want_id]
        ok &= res.check(latest, "%s: no notification %s (have %s)" % (tid, want_id, [n.get("id") for n in lst]))
        for n in latest:
            for s in contains:
                ok &= res.check(s in (n.get("body") or ""), "%s: %s body does not contain %r: %r" % (
                    want_id, ch, s, (n.get("body") or "")[:400]))
    return ok


def timeline_steps(data, skip_notifications=True):
    """The timeline as (event, state, actor) tuples, without notification.recorded entries by default."""
    return [(e.get("event"), e.get("state"), e.get("actor")) for e in data.get("timeline") or []
            if not (skip_notifications and e.get("event") == "notification.recorded")]


def timeline_entries(data, event):
    return [e for e in data.get("timeline") or [] if e.get("event") == event]


# ---------------------------------------------------------------- running a test module alone

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def end_of_test_checks(cl, res):
    """After every test: no service died on its own, every service still running exits 0 on SIGTERM (a sanitizer
    build exits 86/87 on a leak or undefined behaviour), and no log holds a sanitizer report."""
    for s, p in sorted((s, p) for s, p in cl.procs.items() if s in harness.SERVICES):
        if p and p.poll() is not None and not getattr(p, "sav_stopped_by_harness", False):
            # Exit 0 is a clean stop on SIGTERM/SIGINT that this harness did not send: another program on the
            # machine stopped it (the failures it caused are not the service's fault).
            res.check(False, "sav-%s exited %s while the test ran, without the harness stopping it%s; its log ends: %s" % (
                s, p.returncode, " (a SIGTERM from outside the test)" if p.returncode == 0 else "",
                harness.tail_file(os.path.join(cl.dir, s + ".log"), 2).replace("\n", " | ")))
    # Each service's Redis user has only what redisacl.c gives it: any denial means a rule is missing (or a
    # service tried what it must not).
    try:
        denied = cl.redis().acl_log(count=20) if cl.redis_proc and cl.redis_proc.poll() is None else []
    except Exception:
        denied = []
    res.check(not denied, "Redis ACL denials: %s" % ["%s %s %s (%s)" % (d.get("username"), d.get("reason"),
                                                                         d.get("object"), d.get("context"))
                                                      for d in denied[:6]])
    codes = {s: c for s, c in cl.stop_all(timeout=10).items() if s in harness.SERVICES}
    res.check(all(c == 0 for c in codes.values()), "services did not exit 0 on SIGTERM at the end: %s" % codes)
    for s in harness.SERVICES:
        try:
            with open(os.path.join(cl.dir, s + ".log"), "rb") as f:
                log = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        for mark in SANITIZER_MARKS:
            if mark in log:
                i = log.index(mark)
                res.check(False, "sav-%s log holds a sanitizer report: %s" % (s, log[max(0, i - 200):i + 800]))
                break


def fmt_figures(figs):
    parts = []
    for k, v in figs.items():
        if isinstance(v, dict):
            v = ",".join("%s:%s" % kv for kv in v.items()) or "-"
        parts.append("%s=%s" % (k, v))
    return " ".join(parts)


def standalone(tests, doc):
    """The command line of a test module run alone: --bin, --only, --keep; one PASS/FAIL line per test with its
    figures (and, on failure, the problems and the tail of every log); "N passed, N failed"; exit status 1 if any
    test failed."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="directory of sav-* and savctl")
    ap.add_argument("--only", help="comma-separated test names")
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs of passing tests too")
    opts = ap.parse_args()
    selected = tests
    if opts.only:
        names = [n.strip() for n in opts.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in dict(tests)]
        if unknown:
            print("unknown test(s): %s; known: %s" % (", ".join(unknown), ", ".join(n for n, _ in tests)),
                  file=sys.stderr)
            return 1
        selected = [(n, f) for n, f in tests if n in names]
    passed = failed = 0
    t_all = time.monotonic()
    try:
        for name, fn in selected:
            t0 = time.monotonic()
            cl = harness.Cluster(opts.bin, name)
            res = Result()
            try:
                res = fn(cl)
                end_of_test_checks(cl, res)
            except KeyboardInterrupt:
                cl.close(remove=False)
                print("interrupted during %s; its logs are in %s" % (name, cl.dir), file=sys.stderr)
                raise
            except Exception as e:  # HarnessError, a savctl timeout, a bug in a test
                res.problems.append("".join(traceback.format_exception_only(type(e), e)).strip())
                if not isinstance(e, HarnessError):
                    res.problems.append(traceback.format_exc())
            ok = not res.problems
            cl.close(remove=ok and not opts.keep)
            print("%s %s (%.1f s) %s" % ("PASS" if ok else "FAIL", name, time.monotonic() - t0,
                                         fmt_figures(res.figures)), flush=True)
            if ok:
                passed += 1
                continue
            failed += 1
            for p in res.problems[:25]:
                print("    - " + p)
            if len(res.problems) > 25:
                print("    - ... and %d more problem(s)" % (len(res.problems) - 25))
            print("    logs in %s:" % cl.dir)
            print("\n".join("    | " + l for l in cl.logs(30).splitlines()), flush=True)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        failed += 1
    finally:
        harness.kill_all()
    print("total %.1f s" % (time.monotonic() - t_all))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0
