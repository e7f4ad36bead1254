#!/usr/bin/python3
"""Chaos under load (issue 7): complete ticket lifecycles driven through savctl while a random process is
SIGKILLed and restarted every few seconds; at the end every invariant SAV promises is checked and one summary
line printed.

Usage: /usr/bin/python3 tests/system/chaos_tests.py --bin build/asan/bin [--seconds N] [--seed N] [--keep]
(`make chaos` runs it for CHAOS_SECONDS, 300 by default; run.py, hence `make test`, for 60 s.) The duration
and the seed also come from SAV_CHAOS_SECONDS and SAV_TEST_SEED; SAV_CHAOS_VICTIMS (comma-separated, or none)
narrows what is killed.

The cluster: redis-server (AOF appendfsync always), the four services, a real SMSC (smsc_peer.pl, Net::SMPP,
with delivery receipts) and a real SMTP server (aiosmtpd), all on free 127.0.0.1 ports. WORKERS threads each
take their own tickets through a lifecycle chosen at random (seeded): a free repair under the legal guarantee;
a chargeable repair with its quote accepted (invoice, sometimes a credit note, payment in one or two parts,
pickup refused while unpaid, then pickup); a quote refused (the centre's diagnostic-fee invoice, paid, pickup);
a free repair waiting for a part no centre has (waiting_parts until `parts receive`); a cancellation from
in_diagnosis, awaiting_approval or waiting_parts; and on a few tickets a complaint opened and resolved. Every
command carries its own --request-id: answered "unavailable" (exit 4, or no answer at all) it is sent again with
the same id until it gets a definite answer. Meanwhile the main thread SIGKILLs one of intake, diagnostics,
billing, notification, the SMSC, the SMTP server or redis-server every 2-5 s (seeded; in rounds of a random order,
so that each is killed as often), restarts it after a short pause and waits for it; a service found dead that was
not killed is a crash.

When the time is up the kills stop, the workers finish the lifecycles they are in, the cluster is left to
settle (bounded), and the invariants are checked, each counting what it read (a check that read nothing fails):
- acknowledged operations: the effect of every success is in Redis (records, steps in the timeline, verdicts,
  payments, credit notes, received stock, complaints), and replaying a sample of their request ids (150 per
  minute of chaos) answers the first answer with replayed true;
- timelines: every ticket's states follow the lifecycle's transitions from received to its current state, the
  per-state indexes agree, every successful step is in the timeline once, and no ticket is stuck (each one that
  is not where its lifecycle ends is listed with what it waits for);
- numbering: invoices FAC-<year>-000001.. and credit notes AV-<year>-000001.. continuous, no gap, no duplicate,
  one invoice per ticket and kind, exactly the invoices the lifecycles call for, warranty claims once per free
  repair;
- stock: received + adjusted - consumed - reserved = on hand and nothing negative for every part and centre,
  received = catalog + successful receipts, consumed = the parts of the repaired tickets, reserved = what the
  tickets hold (nothing, once every ticket is settled);
- notifications: each ticket has exactly the customer messages its steps call for, each SMS and e-mail sent
  (delivered for SMS whose receipt the SMSC could send), and each reached the peers exactly once, except the
  documented crash windows: a message that reached a peer twice must have resent_after_crash >= 1 and the
  sav-notification that sent the first copy (or, for an e-mail, the SMTP server that kept it without answering)
  must have been killed before the second;
- outboxes drained, the mail and SMS queues empty, no dead letter.
Summary: `chaos: seconds=S seed=N operations=N (ok=N refused=N) kills=N (intake:N,...) losses=N duplicates=N
(in window N) stuck=N dead_letters=N`.
"""

import collections
import datetime
import json
import os
import random
import sys
import threading
import time
from zoneinfo import ZoneInfo

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
SYSTEST_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, SYSTEST_DIR)
import fixtures  # noqa: E402
import harness  # noqa: E402
from fixtures import Result  # noqa: E402
from harness import HarnessError, SERVICES  # noqa: E402
from notification_tests import SmtpPeer, message_id, peer_ids  # noqa: E402
from sms_tests import PASSWORD, SmscPeer, Traffic  # noqa: E402

import redis  # noqa: E402

PARIS = ZoneInfo("Europe/Paris")
DEFAULT_SECONDS = 60
WORKERS = 3                       # the machine has 2 cores
VICTIMS = ("intake", "diagnostics", "billing", "notification", "smsc", "smtp", "redis")
KILL_EVERY_S = (2.0, 5.0)         # pause between two kills
DOWN_S = (0.1, 1.5)               # how long a victim stays dead
CLIENT_ENV = {"SAV_CLIENT_TIMEOUT_MS": "1500", "SAV_CLIENT_ATTEMPTS": "2"}
OP_PATIENCE_S = 90                # an operation answered "unavailable" is sent again this long
WAIT_PATIENCE_S = 60              # a worker waits this long for the pipeline before calling its ticket stuck
SETTLE_S = 90                     # the cluster gets this long (or half the chaos, if longer) to settle after it
REPLAY_PER_MINUTE = 150           # request ids replayed at the end, per minute of chaos (a seeded sample)
MAIL_DOMAIN = "chaos.sav.example"
DOMAIN_PART = "chaos.example.com"
CENTRES = {"PAR-01": 3900, "LYO-01": 0, "REP-BDX-07": 2900}  # diagnostic fee (catalog), excl. VAT
STOCKED = ("RES-2000W", "PUMP-DRAIN")                        # received in bulk before the chaos
MISSING_PART = "BO-FAN"          # no centre has one: a free repair needing it waits in waiting_parts
NEVER_RECEIVED = ("PAR-01", "OV-LOCK")  # never received during the run: a cancelled waiting ticket's part
VAT_BP = 2000
LIFECYCLES = (("free", 25), ("accepted", 25), ("refused", 15), ("parts", 15), ("cancel", 10))
# An SMS accepted by an SMSC killed before its receipt came (or whose receipt it never offered again) stays sent.
FINAL_OK = {"sms": ("delivered", "sent"), "email": ("sent",)}

# Timeline states each step may move a ticket between (common/lifecycle.c), events that keep the state allowed.
TRANSITIONS = {
    ("received", "in_diagnosis"), ("in_diagnosis", "awaiting_approval"), ("awaiting_approval", "in_repair"),
    ("awaiting_approval", "ready"), ("in_diagnosis", "waiting_parts"), ("awaiting_approval", "waiting_parts"),
    ("received", "waiting_parts"), ("waiting_parts", "in_repair"), ("in_diagnosis", "in_repair"),
    ("received", "in_repair"), ("in_repair", "ready"), ("in_diagnosis", "ready"), ("ready", "closed"),
    ("received", "cancelled"), ("in_diagnosis", "cancelled"), ("awaiting_approval", "cancelled"),
    ("waiting_parts", "cancelled"), ("awaiting_approval", "in_diagnosis"), ("waiting_parts", "in_diagnosis"),
}
STATES = ("received", "in_diagnosis", "awaiting_approval", "waiting_parts", "in_repair", "ready", "closed",
          "cancelled")
# The timeline event of each lifecycle command (savctl name -> event).
STEP_EVENTS = {"repair start": "repair.start", "repair done": "repair.done", "ticket pickup": "pickup",
               "ticket cancel": "cancel", "quote accept": "quote.accepted", "quote refuse": "quote.refused"}


def paris_today():
    return datetime.datetime.now(PARIS).date()


class Abort(Exception):
    """A lifecycle cannot go on (an unexpected answer, or a ticket stuck): already recorded."""


# ---------------------------------------------------------------- the record of everything that was done

class Op:
    """One savctl command and its definite answer (rc 0 with its JSON, a refusal, or a failure)."""
    __slots__ = ("kind", "args", "rid", "rc", "data", "err", "attempts", "tid")

    def __init__(self, kind, args, rid, tid):
        self.kind, self.args, self.rid, self.tid = kind, args, rid, tid
        self.rc, self.data, self.err, self.attempts = None, None, "", 0


class Lifecycle:
    """One ticket's story as the worker drove it: what must be true of it at the end."""

    def __init__(self, worker, n, kind, centre, lang):
        self.worker, self.n, self.kind, self.centre, self.lang = worker, n, kind, centre, lang
        self.cid = self.serial = self.tid = None
        self.final = None              # the state the lifecycle leaves the ticket in
        self.verdict_parts = {}        # the last successful verdict's parts
        self.repaired = False          # repair done succeeded
        self.invoice = None            # (id, kind)
        self.credits = []              # (credit note id, amount)
        self.payments = []             # amounts
        self.complaint = None          # (id, resolution)
        self.cancel_from = None
        self.steps = collections.Counter()  # timeline event of each successful step
        self.notices = collections.Counter()  # event -> how many notices (versions) the steps call for
        self.done = False


class Book:
    """Thread-safe log of operations, lifecycles, stuck tickets and problems."""

    def __init__(self, res):
        self.res = res
        self.lock = threading.Lock()
        self.ops = []
        self.lifecycles = []
        self.stuck = []       # (tid, reason)
        self.counter = 0

    def rid(self, worker):
        with self.lock:
            self.counter += 1
            return "chaos-w%d-%06d" % (worker, self.counter)

    def add_op(self, op):
        with self.lock:
            self.ops.append(op)

    def problem(self, msg):
        with self.lock:
            self.res.problems.append(msg)

    def stuck_ticket(self, tid, reason):
        with self.lock:
            self.stuck.append((tid, reason))


# ---------------------------------------------------------------- the cluster and its victims

class Chaos:
    """The cluster, the two peers, and the SIGKILLs. Peers are restarted as new instances on the same port
    (a new SMSC log, a new SMTP folder) so that each instance's log stands alone."""

    def __init__(self, cl, res, rng, victims):
        self.cl, self.res, self.rng, self.victims = cl, res, rng, victims
        self.smsc_port, self.smtp_port = harness.free_ports(2)
        self.smscs, self.smtps = [], []
        self.kills = collections.Counter()
        self.bag = []         # the victims still to kill in this round: each is killed once per round
        self.kill_log = []    # [epoch s of the kill, victim, epoch s of the restart]
        self.crashes = []

    def start(self):
        self.start_smsc()
        self.start_smtp()
        self.cl.write_config(self.cl.config, extra=self.config())
        self.cl.start_all()

    def config(self):
        """The configuration the chaos runs with: short timers and retries, the two peers."""
        return {
            "intake": [("scheduler_ms", "500")],
            "notification": [
                ("smtp_url", "smtp://127.0.0.1:%d" % self.smtp_port), ("mail_domain", MAIL_DOMAIN),
                ("mail_stale_ms", "2000"), ("mail_retry_max_ms", "1000"), ("smtp_timeout_ms", "3000"),
                ("smpp_host", "127.0.0.1"), ("smpp_port", str(self.smsc_port)),
                ("smpp_password", self.cl.secret("smpp", PASSWORD)),
                ("smpp_enquire_ms", "1000"), ("smpp_response_ms", "2000"), ("sms_retry_max_ms", "1000"),
                ("sms_stale_ms", "2000"), ("sms_quiet_hours", "off")]}

    def start_smsc(self):
        peer = SmscPeer(self.cl, "chaos-%d" % (len(self.smscs) + 1), port=self.smsc_port)
        self.smscs.append(peer)
        peer.start("--receipts")

    def start_smtp(self):
        peer = SmtpPeer(self.cl, os.path.join(self.cl.dir, "smtp-%d" % (len(self.smtps) + 1)), port=self.smtp_port)
        self.smtps.append(peer)
        peer.start()

    def check_alive(self):
        """A service that died without being killed crashed: recorded, and started again so the run goes on."""
        for s in SERVICES:
            p = self.cl.procs.get(s)
            if p is not None and p.poll() is not None and not getattr(p, "sav_stopped_by_harness", False):
                self.crashes.append(s)
                self.res.check(False, "sav-%s exited %s on its own during the chaos; its log ends: %s" % (
                    s, p.returncode, harness.tail_file(os.path.join(self.cl.dir, s + ".log"), 3).replace(
                        "\n", " | ")))
                p.sav_stopped_by_harness = True
                self.cl.start_service(s)
                self.cl.wait_service(s, 30)

    def kill(self, victim):
        self.kills[victim] += 1
        self.kill_log.append([time.time(), victim, None])
        if victim == "redis":
            self.cl.kill_redis()
        elif victim == "smsc":
            self.smscs[-1].kill()
        elif victim == "smtp":
            self.smtps[-1].stop()  # SIGKILL
        else:
            self.cl.kill_service(victim)

    def restart(self, victim):
        self.kill_log[-1][2] = time.time()
        if victim == "redis":
            self.cl.start_redis()
        elif victim == "smsc":
            self.start_smsc()
        elif victim == "smtp":
            self.start_smtp()
        else:
            self.cl.start_service(victim)
            self.cl.wait_service(victim, 30)

    def run(self, until):
        """Kills and restarts until `until` (monotonic), in the calling (main) thread: processes started here get
        PDEATHSIG from setpriv, which only works for children of the main thread."""
        while True:
            pause = self.rng.uniform(*KILL_EVERY_S)
            if time.monotonic() + pause >= until or not self.victims:
                time.sleep(max(0, until - time.monotonic()))
                return
            time.sleep(pause)
            self.check_alive()
            if not self.bag:
                self.bag = list(self.victims)
                self.rng.shuffle(self.bag)
            victim = self.bag.pop()
            self.kill(victim)
            time.sleep(self.rng.uniform(*DOWN_S))
            self.restart(victim)

    def all_up(self):
        self.check_alive()
        if self.cl.redis_proc is None or self.cl.redis_proc.poll() is not None:
            self.cl.start_redis()
        self.peers_up()
        self.cl.wait_ready(30)

    def reader(self):
        """What the workers read the pipeline's progress from: the one Redis."""
        return self.cl.redis()

    def peers_up(self):
        """Starts the SMSC or the SMTP server again if the last kill left it down."""
        if self.smscs[-1].proc is None:
            self.start_smsc()
        if self.smtps[-1].proc is None:
            self.start_smtp()

    def died_after(self, victim, t1, t2):
        """Whether the incarnation of victim that was alive at t1 (or died just before) was killed by t2: one
        started after t1 cannot have done what a peer logged at t1."""
        return any(v == victim and k <= t2 and (r is None or t1 <= r) for k, v, r in self.kill_log)

    def stop_peers(self):
        for p in self.smscs:
            if p.proc is not None:
                p.stop()
        for p in self.smtps:
            p.stop()


# ---------------------------------------------------------------- a worker and its lifecycles

class Worker:
    def __init__(self, idx, cl, book, rng, stop, reader):
        """reader() returns the Redis client the waits read the pipeline's progress from."""
        self.idx, self.cl, self.book, self.rng, self.stop, self.reader = idx, cl, book, rng, stop, reader
        self.n = 0

    # -- savctl, retried with the same request id while unavailable

    def op(self, lc, kind, *args, want=(0,), err_has=None):
        """Runs `savctl --json KIND ARGS --request-id RID`, sending it again (same id) after exit 4 or no answer;
        returns the parsed answer (exit 0) or None (a wanted refusal). Any other outcome aborts the lifecycle."""
        rid = self.book.rid(self.idx)
        o = Op(kind, [str(a) for a in args], rid, lc.tid if lc else None)
        argv = kind.split() + o.args + ["--request-id", rid]
        deadline = time.monotonic() + OP_PATIENCE_S
        while True:
            o.attempts += 1
            try:
                r = self.cl.savctl(*argv, json_out=True, env=CLIENT_ENV)
                o.rc, out, o.err = r.returncode, r.stdout, r.stderr.strip()
            except HarnessError as e:  # no answer at all within the harness's timeout: as unavailable
                o.rc, out, o.err = -1, "", str(e)
            if o.rc not in (4, -1) or time.monotonic() > deadline:
                break
            time.sleep(0.2 + 0.3 * self.rng.random())
        if o.rc == 0:
            try:
                o.data = json.loads(out)
            except ValueError:
                o.rc, o.err = 5, "invalid JSON %r" % out[:200]
        self.book.add_op(o)
        what = "savctl %s (request id %s, %d attempt(s))" % (" ".join(argv[:-2]), rid, o.attempts)
        if o.rc not in want:
            self.book.problem("%s: exit %d, want %s: %s" % (what, o.rc, "/".join(map(str, want)), o.err[:300]))
            raise Abort()
        if err_has and o.rc != 0 and err_has not in o.err:
            self.book.problem("%s: exit %d but stderr %r does not say %r" % (what, o.rc, o.err[:300], err_has))
        return o.data

    def step(self, lc, kind, tid, want_state, *args):
        d = self.op(lc, kind, tid, *args)
        if not d or d.get("id") != tid or d.get("state") != want_state:
            self.book.problem("savctl %s %s: answer %r, want state %s" % (kind, tid, d, want_state))
            raise Abort()
        lc.steps[STEP_EVENTS[kind]] += 1
        return d

    # -- waiting for the pipeline

    def wait(self, lc, what, pred):
        """Polls pred() (a Redis read) until truthy; a ticket still waiting after WAIT_PATIENCE_S is stuck."""
        deadline = time.monotonic() + WAIT_PATIENCE_S
        while time.monotonic() < deadline:
            try:
                v = pred()
            except (redis.exceptions.RedisError, OSError):
                v = None
            if v:
                return v
            time.sleep(0.1)
        self.book.stuck_ticket(lc.tid, "waited %d s for %s" % (WAIT_PATIENCE_S, what))
        raise Abort()

    def hget(self, name, field):
        return self.reader().hget(self.cl.key(name), field)

    def wait_state(self, lc, state, why):
        self.wait(lc, "%s (state %s)" % (why, state), lambda: self.hget("ticket:" + lc.tid, "state") == state)

    # -- the lifecycles

    def run(self):
        weights = [w for _, w in LIFECYCLES]
        while not self.stop.is_set():
            self.n += 1
            kind = self.rng.choices([k for k, _ in LIFECYCLES], weights)[0]
            centre = self.rng.choice(sorted(CENTRES))
            lc = Lifecycle(self.idx, self.n, kind, centre, self.rng.choice(("fr", "en")))
            with self.book.lock:
                self.book.lifecycles.append(lc)
            try:
                getattr(self, "lc_" + kind)(lc)
                lc.done = True
            except Abort:
                pass
            except Exception as e:  # a bug of this test: keep the run going, report it
                self.book.problem("worker %d, %s lifecycle of %s: %r" % (self.idx, kind, lc.tid, e))

    def open(self, lc, model, delivered, fault=None):
        tag = "%d-%04d" % (self.idx, lc.n)
        phone = "+3361%d%06d" % (self.idx, lc.n)
        d = self.op(lc, "customer add", "--name", ("Client Chaos %s" if lc.lang == "en" else "Cliente Chaos %s") % tag,
                    "--phone", phone, "--email", "chaos%s@%s" % (tag, DOMAIN_PART), "--lang", lc.lang)
        lc.cid = d.get("id")
        lc.serial = "SN-CHAOS-%s" % tag
        self.op(lc, "product add", "--serial", lc.serial, "--model", model, "--customer", lc.cid,
                "--delivered", delivered)
        args = ["--customer", lc.cid, "--serial", lc.serial, "--kind", "repair", "--symptom",
                "Ne fonctionne plus" if lc.lang == "fr" else "Stopped working", "--centre", lc.centre]
        if fault:
            args += ["--fault", fault]
        d = self.op(lc, "ticket open", *args)
        lc.tid = d.get("id")
        lc.notices["ticket_received"] += 1
        self.wait_state(lc, "in_diagnosis", "the pre-diagnosis of sav-diagnostics")
        # As at a real desk, the technician comes after billing's first estimate (the customer's acknowledgement):
        # an estimate that finds the ticket already closed or cancelled is dropped, by design.
        self.wait(lc, "the coverage estimate of sav-billing", lambda: self.hget("coverage:" + lc.tid, "status"))

    def diagnose(self, lc, cause, parts, want_state):
        args = ["--cause", cause, "--action", "replace_parts", "--labour", "45"]
        for ref in parts:
            args += ["--part", ref]
        d = self.op(lc, "diagnose", lc.tid, *args)
        if not d or d.get("state") != want_state:
            self.book.problem("diagnose %s: answer %r, want state %s" % (lc.tid, d, want_state))
            raise Abort()
        lc.verdict_parts = collections.Counter(parts)
        return d

    def maybe_complaint(self, lc):
        if self.rng.random() < 0.25:
            reason = self.rng.choice(("not_repaired", "extra_costs", "damaged"))
            d = self.op(lc, "complaint open", lc.tid, "--reason", reason, "--text",
                        "Réclamation écrite du client" if lc.lang == "fr" else "The customer's written complaint")
            lc.complaint = (d.get("id"), None)
            lc.notices["complaint_acknowledged"] += 1

    def resolve_complaint(self, lc):
        if lc.complaint:
            how = self.rng.choice(("goodwill_credit", "rejected", "repair"))
            self.op(lc, "complaint resolve", lc.complaint[0], "--resolution", how, "--note",
                    "Décision du service client" if lc.lang == "fr" else "Our customer service's decision")
            lc.complaint = (lc.complaint[0], how)
            lc.notices["complaint_resolved"] += 1

    def pickup(self, lc):
        self.resolve_complaint(lc)
        self.step(lc, "ticket pickup", lc.tid, "closed")
        lc.final = "closed"

    def wait_claim(self, lc):
        self.wait(lc, "the warranty claim of sav-billing", lambda: self.reader().get(
            self.cl.key("claim_for:" + lc.tid)))

    def lc_free(self, lc):
        self.open(lc, "WM-7000", (paris_today() - datetime.timedelta(days=200)).isoformat(), "E21")
        self.diagnose(lc, "manufacturing", ["RES-2000W"], "in_diagnosis")
        lc.notices["diagnosis_done"] += 1
        self.maybe_complaint(lc)
        self.step(lc, "repair start", lc.tid, "in_repair")
        lc.notices["repair_started"] += 1
        self.step(lc, "repair done", lc.tid, "ready", "--note", "Résistance remplacée")
        lc.repaired = True
        lc.notices["ready_for_pickup"] += 1
        self.wait_claim(lc)
        self.pickup(lc)

    def chargeable(self, lc):
        self.open(lc, "WM-7000", "2018-03-01")
        self.diagnose(lc, "wear", [self.rng.choice(STOCKED)], "awaiting_approval")
        lc.notices["diagnosis_done"] += 1
        self.wait(lc, "the quote of sav-billing", lambda: self.hget("quote:" + lc.tid, "version") == "1")
        lc.notices["quote_sent"] += 1
        self.maybe_complaint(lc)

    def pay(self, lc, fid):
        """Pickup refused while unpaid, then the balance paid (in two parts on some), then the pickup."""
        self.op(lc, "ticket pickup", lc.tid, want=(2,), err_has="unpaid")
        balance = int(self.wait(lc, "the invoice's balance", lambda: self.hget("invoice:" + fid, "balance_cents")))
        parts = [balance] if balance < 200 or self.rng.random() < 0.6 else [balance // 3, balance - balance // 3]
        for k, amount in enumerate(parts):
            d = self.op(lc, "payment record", fid, "--amount", amount, "--method", self.rng.choice(
                ("card", "cash", "cheque", "transfer")))
            want = "paid" if k == len(parts) - 1 else "partially_paid"
            if not d or d.get("status") != want:
                self.book.problem("payment record %s %d: answer %r, want status %s" % (fid, amount, d, want))
                raise Abort()
            lc.payments.append(amount)
        self.pickup(lc)

    def lc_accepted(self, lc):
        self.chargeable(lc)
        self.step(lc, "quote accept", lc.tid, "in_repair")
        self.step(lc, "repair done", lc.tid, "ready")
        lc.repaired = True
        lc.notices["ready_for_pickup"] += 1
        fid = self.wait(lc, "the repair invoice of sav-billing", lambda: self.hget("ticket:" + lc.tid, "invoice_id"))
        lc.invoice = (fid, "repair")
        lc.notices["invoice_issued"] += 1
        if self.rng.random() < 0.4:
            d = self.op(lc, "invoice credit", fid, "--amount", 1000, "--reason", "geste commercial")
            lc.credits.append((d.get("id"), d.get("amount_cents")))
        self.pay(lc, fid)

    def lc_refused(self, lc):
        self.chargeable(lc)
        self.step(lc, "quote refuse", lc.tid, "ready", "--reason", "trop cher")
        lc.notices["ready_for_pickup"] += 1
        if CENTRES[lc.centre]:
            fid = self.wait(lc, "the diagnostic-fee invoice of sav-billing", lambda: self.reader().get(
                self.cl.key("invoice_for:%s:diagnostic" % lc.tid)))
            lc.invoice = (fid, "diagnostic")
            lc.notices["invoice_issued"] += 1
            self.pay(lc, fid)
        else:
            self.pickup(lc)

    def lc_parts(self, lc):
        self.open(lc, "BO-24", (paris_today() - datetime.timedelta(days=200)).isoformat(), "E21")
        self.diagnose(lc, "manufacturing", [MISSING_PART], "waiting_parts")
        lc.notices["diagnosis_done"] += 1
        self.maybe_complaint(lc)
        self.op(lc, "parts receive", lc.centre, MISSING_PART, 1, "--reason", "commande fournisseur")
        self.wait_state(lc, "in_repair", "the parts-arrived step after parts receive")
        lc.steps["parts.arrived"] += 1
        self.step(lc, "repair done", lc.tid, "ready")
        lc.repaired = True
        lc.notices["ready_for_pickup"] += 1
        self.wait_claim(lc)
        self.pickup(lc)

    def lc_cancel(self, lc):
        lc.cancel_from = self.rng.choice(("in_diagnosis", "awaiting_approval", "waiting_parts"))
        if lc.cancel_from == "waiting_parts":
            lc.centre = NEVER_RECEIVED[0]
            self.open(lc, "OV-900", (paris_today() - datetime.timedelta(days=200)).isoformat())
            self.diagnose(lc, "manufacturing", [NEVER_RECEIVED[1]], "waiting_parts")
            lc.notices["diagnosis_done"] += 1
        elif lc.cancel_from == "awaiting_approval":
            self.chargeable(lc)
        else:
            self.open(lc, "WM-7000", (paris_today() - datetime.timedelta(days=200)).isoformat(), "E21")
        self.resolve_complaint(lc)
        self.step(lc, "ticket cancel", lc.tid, "cancelled", "--reason", "Le client a renoncé")
        lc.notices["ticket_cancelled"] += 1
        lc.final = "cancelled"


# ---------------------------------------------------------------- settling

def scan(r, pattern):
    return sorted(r.scan_iter(match=pattern, count=1000))


def busy(cl):
    """What still moves: {what: count}, empty once the cluster is quiet."""
    r = cl.redis()
    out = {}
    for k in scan(r, cl.key("outbox:*")):
        n = r.xlen(k)
        if n:
            out[k.rsplit(":", 1)[-1] + "_outbox"] = n
    for q in ("mail:queue", "mail:sending", "sms:queue", "sms:sending"):
        n = r.zcard(cl.key(q))
        if n:
            out[q] = n
    ids = r.zrange(cl.key("notifs:all"), 0, -1)
    p = r.pipeline(transaction=False)
    for nid in ids:
        p.hget(cl.key("notif:" + nid), "status")
    moving = sum(1 for s in p.execute() if s in ("queued", "sending", "deferred"))
    if moving:
        out["notifications_in_flight"] = moving
    return out


def settle(cl, chaos, bound):
    """Waits (at most bound s) until nothing moves and the live SMSC has its receipts answered; returns (s, left).
    The e-mails and SMS the load recorded faster than the peers took them are sent meanwhile."""
    t0 = time.monotonic()
    left = {"unknown": 1}
    deadline = t0 + bound
    while time.monotonic() < deadline:
        try:
            left = busy(cl)
        except (redis.exceptions.RedisError, OSError) as e:
            left = {"redis": str(e)}
        if not left:
            break
        time.sleep(0.25)
    chaos.smscs[-1].settle(5)
    return time.monotonic() - t0, left


# ---------------------------------------------------------------- the invariants

class Tally:
    """What the checks found: the figures of the summary line."""

    def __init__(self):
        self.losses = 0
        self.duplicates = 0
        self.in_window = 0
        self.stuck = 0
        self.dead_letters = 0


def catalog_stock():
    cat = fixtures.load_catalog()
    centres = [c["id"] for c in cat["centres"]]
    parts = [p["ref"] for p in cat["parts"]]
    initial = {(c, p["ref"]): p.get("stock", {}).get(c, 0) for p in cat["parts"] for c in centres}
    return centres, parts, initial


def hgetall_many(cl, names):
    p = cl.redis().pipeline(transaction=False)
    for n in names:
        p.hgetall(cl.key(n))
    return dict(zip(names, p.execute()))


def timeline(cl, tid):
    return [json.loads(x) for x in cl.redis().lrange(cl.key("timeline:" + tid), 0, -1)]


def answer_core(data):
    """The fields of an answer a replay must give back unchanged."""
    return {k: v for k, v in (data or {}).items() if k not in ("replayed", "previous_state")}


def check_replays(cl, res, book, replays, rng):
    """A sample of acknowledged request ids sent again: each answers its first answer, replayed (that it changes
    nothing is for the checks that follow, which count every effect)."""
    ok = [o for o in book.ops if o.rc == 0]
    sample = rng.sample(ok, min(replays, len(ok)))

    def replay(o):
        try:
            rr = cl.savctl(*(o.kind.split() + o.args + ["--request-id", o.rid]), json_out=True)
        except HarnessError as e:
            return o, -1, None, str(e)
        try:
            data = json.loads(rr.stdout) if rr.returncode == 0 else None
        except ValueError:
            data = None
        return o, rr.returncode, data, rr.stderr.strip()
    wrong = []
    for o, rc, data, err in fixtures.pmap(replay, sample, workers=WORKERS):
        if rc != 0 or not data or data.get("replayed") is not True or answer_core(data) != answer_core(o.data):
            wrong.append("%s %s --request-id %s: first %r, replay exit %d %r %s" % (
                o.kind, " ".join(o.args), o.rid, o.data, rc, data, err[:200]))
    for m in wrong[:10]:
        res.check(False, "replay: " + m)
    res.check(len(wrong) <= 10, "... %d replays wrong in all" % len(wrong))
    res.fig("replayed", "%d/%d" % (len(sample) - len(wrong), len(sample)))
    res.check(sample, "no request id replayed")


def check_ops(cl, res, book, tally):
    """Every acknowledged operation's effect is in Redis."""
    r = cl.redis()
    ok = [o for o in book.ops if o.rc == 0]
    checked = collections.Counter()
    lost = []
    received = collections.Counter()
    pays, credits = collections.defaultdict(list), collections.defaultdict(list)
    for o in ok:
        d = o.data or {}
        a = o.args
        if o.kind == "customer add":
            good = r.hget(cl.key("customer:" + d.get("id", "?")), "name") == a[a.index("--name") + 1] and \
                r.zscore(cl.key("customers"), d.get("id", "?")) is not None
        elif o.kind == "product add":
            good = r.hget(cl.key("product:" + d.get("id", "?")), "owner") == a[a.index("--customer") + 1]
        elif o.kind == "ticket open":
            h = r.hgetall(cl.key("ticket:" + d.get("id", "?")))
            good = h.get("customer_id") == a[a.index("--customer") + 1] and h.get("serial") == \
                a[a.index("--serial") + 1] and r.zscore(cl.key("tickets"), d.get("id", "?")) is not None
        elif o.kind == "diagnose":
            versions = [json.loads(x).get("version") for x in r.lrange(cl.key("verdicts:" + o.tid), 0, -1)]
            good = d.get("version") in versions
        elif o.kind in STEP_EVENTS:
            good = any(e.get("event") == STEP_EVENTS[o.kind] and e.get("state") == d.get("state")
                       for e in timeline(cl, o.tid))
        elif o.kind == "payment record":
            pays[a[0]].append(int(a[a.index("--amount") + 1]))
            good = True  # compared per invoice below
        elif o.kind == "invoice credit":
            c = r.hgetall(cl.key("credit:" + str(d.get("id"))))
            good = c.get("invoice") == a[0] and c.get("amount_cents") == str(d.get("amount_cents"))
            credits[a[0]].append(d.get("id"))
        elif o.kind == "parts receive":
            received[(a[0], a[1])] += int(a[2])
            good = True  # compared per part below
        elif o.kind == "complaint open":
            good = r.hget(cl.key("complaint:" + str(d.get("id"))), "ticket") == o.tid
        elif o.kind == "complaint resolve":
            h = r.hgetall(cl.key("complaint:" + a[0]))
            good = h.get("status") == "resolved" and h.get("resolution") == a[a.index("--resolution") + 1]
        else:
            good = False
        checked[o.kind] += 1
        if not good:
            lost.append("%s %s (request id %s) answered %r" % (o.kind, " ".join(a), o.rid, d))
    for fid, amounts in pays.items():
        stored = sorted(json.loads(x).get("amount_cents") for x in r.lrange(cl.key("invoice:%s:payments" % fid), 0, -1))
        if stored != sorted(amounts):
            lost.append("invoice %s: payments %s stored, %s acknowledged" % (fid, stored, sorted(amounts)))
    for fid, ids in credits.items():
        stored = sorted(r.lrange(cl.key("invoice:%s:credits" % fid), 0, -1))
        if stored != sorted(ids):
            lost.append("invoice %s: credit notes %s stored, %s acknowledged" % (fid, stored, sorted(ids)))
    _, _, initial = catalog_stock()
    for (c, ref), q in received.items():
        got = int(r.hget(cl.key("stock:%s:received" % c), ref) or 0)
        if got != initial[(c, ref)] + q:
            lost.append("stock %s %s: received %d, want %d (catalog) + %d (acknowledged receipts)" % (
                c, ref, got, initial[(c, ref)], q))
    for m in lost[:10]:
        res.check(False, "acknowledged but not in the state: " + m)
    tally.losses += len(lost)
    res.fig("ops_checked", sum(checked.values()))
    res.check(sum(checked.values()) > 0 and checked["ticket open"] > 0, "no acknowledged operation to check")



def check_timelines(cl, res, book, tally):
    """Each ticket's timeline explains its state; the per-state indexes agree; each step is there once; no
    ticket is stuck."""
    r = cl.redis()
    tids = r.zrange(cl.key("tickets"), 0, -1)
    by_tid = {lc.tid: lc for lc in book.lifecycles if lc.tid}
    p = r.pipeline(transaction=False)
    for tid in tids:
        for s in STATES:
            p.zscore(cl.key("state:" + s), tid)
    scores = p.execute()
    tickets = hgetall_many(cl, ["ticket:" + t for t in tids])
    stuck = {}
    for tid, reason in book.stuck:
        stuck.setdefault(tid, reason)
    checked = 0
    for i, tid in enumerate(tids):
        h = tickets["ticket:" + tid]
        state = h.get("state")
        tl = timeline(cl, tid)
        states = [e.get("state") for e in tl]
        bad = []
        if not tl or tl[0].get("event") != "ticket.received" or states[0] != "received":
            bad.append("does not start with ticket.received in received: %s" % tl[:1])
        for a, b in zip(states, states[1:]):
            if a != b and (a, b) not in TRANSITIONS:
                bad.append("moves %s -> %s, which no step allows" % (a, b))
        if states and states[-1] != state:
            bad.append("ends in %s but the ticket is %s" % (states[-1], state))
        indexed = [s for s, sc in zip(STATES, scores[i * len(STATES):(i + 1) * len(STATES)]) if sc is not None]
        if indexed != [state]:
            bad.append("state %s but indexed in %s" % (state, indexed))
        lc = by_tid.get(tid)
        if lc is None:
            bad.append("opened by no lifecycle of this run")
        else:
            events = collections.Counter(e.get("event") for e in tl)
            for ev in set(STEP_EVENTS.values()) | {"parts.arrived"}:
                if events[ev] != lc.steps[ev] and (lc.done or events[ev] < lc.steps[ev]):
                    bad.append("%d %s entries, want %d (the successful steps)" % (events[ev], ev, lc.steps[ev]))
            if lc.done and state != lc.final:
                stuck.setdefault(tid, "its %s lifecycle ended in %s but the ticket is %s" % (lc.kind, lc.final, state))
            elif not lc.done and tid not in stuck:
                stuck[tid] = "its %s lifecycle stopped on an unexpected answer (see above)" % lc.kind
        if bad:
            res.check(False, "%s timeline: %s" % (tid, "; ".join(bad)))
        checked += 1
    for tid, reason in sorted(stuck.items()):
        h = r.hgetall(cl.key("ticket:" + tid)) if tid else {}
        print("    stuck: %s (%s): %s" % (tid, h.get("state"), reason), flush=True)
        res.check(False, "stuck: %s in %s: %s" % (tid, h.get("state"), reason))
    tally.stuck = len(stuck)
    res.fig("timelines_checked", checked)
    res.check(checked > 0 and checked == len(by_tid), "%d timelines checked, %d tickets opened by the lifecycles" % (
        checked, len(by_tid)))


def series(ids, pattern):
    """{year: sorted numbers} of ids like FAC-2026-000012."""
    out = collections.defaultdict(list)
    for i in ids:
        parts = i.split("-")
        if len(parts) == 3 and parts[0] == pattern and parts[1].isdigit() and parts[2].isdigit():
            out[parts[1]].append(int(parts[2]))
        else:
            out["malformed"].append(i)
    return {k: sorted(v) for k, v in out.items()}


def half_up_vat(net):
    return net + (net * VAT_BP + 5000) // 10000


def check_numbering(cl, res, book):
    """Invoices and credit notes numbered without gap or duplicate; exactly the invoices and warranty claims the
    lifecycles call for, each with its amounts."""
    r = cl.redis()
    counts = {}
    for prefix, index, seq in (("FAC", "invoices", "seq:invoice:%s"), ("AV", "credits", "seq:credit:%s")):
        ids = r.zrange(cl.key(index), 0, -1)
        counts[prefix] = len(ids)
        for year, nums in series(ids, prefix).items():
            top = r.get(cl.key(seq % year)) if year != "malformed" else None
            res.check(year != "malformed" and nums == list(range(1, len(nums) + 1)) and str(len(nums)) == top,
                      "%s numbers of %s: %d ids, %s, sequence at %s: gap or duplicate" % (
                          prefix, year, len(nums), nums[:3] + ["..."] + nums[-3:], top))
        kind = "invoice:" if prefix == "FAC" else "credit:"
        stored = [k for k in scan(r, cl.key("%s%s-*" % (kind, prefix))) if ":" not in k[len(cl.key(kind)):]]
        res.check(len(stored) == len(ids), "%d %s hashes stored, %d indexed" % (len(stored), prefix, len(ids)))
    invoices = hgetall_many(cl, ["invoice:" + i for i in r.zrange(cl.key("invoices"), 0, -1)])
    per_ticket = collections.Counter((h.get("ticket"), h.get("kind")) for h in invoices.values())
    res.check(all(n == 1 for n in per_ticket.values()), "tickets with two invoices of one kind: %s" % [
        k for k, n in per_ticket.items() if n > 1][:5])
    want = {(lc.tid, lc.invoice[1]) for lc in book.lifecycles if lc.invoice}
    for lc in book.lifecycles:
        if lc.done and lc.kind == "refused" and CENTRES[lc.centre]:
            want.add((lc.tid, "diagnostic"))
        if lc.done and lc.kind == "accepted":
            want.add((lc.tid, "repair"))
    res.check(set(per_ticket) == want, "invoices for %d (ticket, kind), the lifecycles call for %d: missing %s, "
              "unexpected %s" % (len(per_ticket), len(want), sorted(want - set(per_ticket))[:5],
                                 sorted(set(per_ticket) - want)[:5]))
    amounts = 0
    for lc in book.lifecycles:
        if not (lc.done and lc.invoice):
            continue
        fid, kind = lc.invoice
        h = invoices.get("invoice:" + fid, {})
        if kind == "repair":
            doc = json.loads(r.hget(cl.key("quote:" + lc.tid), "document") or "{}")
            total = doc.get("gross_cents")
        else:
            total = half_up_vat(CENTRES[lc.centre])
        credited = sum(a for _, a in lc.credits)
        res.check(h.get("ticket") == lc.tid and h.get("total_cents") == str(total) and
                  h.get("paid_cents") == str(sum(lc.payments)) and h.get("credited_cents") == str(credited) and
                  h.get("balance_cents") == "0" and h.get("status") == "paid",
                  "invoice %s of %s: ticket %s total %s paid %s credited %s balance %s status %s, want total %s paid "
                  "%d credited %d balance 0 paid" % (fid, lc.tid, h.get("ticket"), h.get("total_cents"),
                                                     h.get("paid_cents"), h.get("credited_cents"),
                                                     h.get("balance_cents"), h.get("status"), total,
                                                     sum(lc.payments), credited))
        amounts += 1
    claims = hgetall_many(cl, ["claim:" + c for c in r.zrange(cl.key("claims"), 0, -1)])
    nums = sorted(int(c.split("-")[1]) for c in r.zrange(cl.key("claims"), 0, -1))
    res.check(nums == list(range(1, len(nums) + 1)), "warranty claim numbers with a gap: %s" % nums[:10])
    per = collections.Counter(h.get("ticket") for h in claims.values())
    free = {lc.tid for lc in book.lifecycles if lc.done and lc.kind in ("free", "parts")}
    res.check(set(per) == free and all(n == 1 for n in per.values()),
              "warranty claims for %d tickets (%d twice), %d free repairs done: missing %s, unexpected %s" % (
                  len(per), sum(1 for n in per.values() if n > 1), len(free), sorted(free - set(per))[:5],
                  sorted(set(per) - free)[:5]))
    res.fig("invoices", counts["FAC"])
    res.fig("credit_notes", counts["AV"])
    res.fig("claims", len(claims))
    res.check(counts["FAC"] > 0 and amounts > 0 and counts["AV"] > 0 and claims,
              "nothing to check: %d invoices (%d with their amounts), %d credit notes, %d claims" % (
                  counts["FAC"], amounts, counts["AV"], len(claims)))


def check_stock(cl, res, book):
    """received + adjusted - consumed - reserved = on hand everywhere, nothing negative; the counters agree with
    the receipts and the repairs; reserved is what the tickets hold."""
    r = cl.redis()
    centres, parts, initial = catalog_stock()
    p = r.pipeline(transaction=True)
    for c in centres:
        for suffix in ("", ":reserved", ":received", ":consumed", ":adjusted"):
            p.hgetall(cl.key("stock:%s%s" % (c, suffix)))
    out = p.execute()
    consumed = collections.Counter()
    for lc in book.lifecycles:
        if lc.repaired:
            for ref, q in lc.verdict_parts.items():
                consumed[(lc.centre, ref)] += q
    held = collections.Counter()
    for k in scan(r, cl.key("parts_held:*")):
        tid = k.rsplit(":", 1)[-1]
        centre = r.hget(cl.key("ticket:" + tid), "centre")
        for ref, q in r.hgetall(k).items():
            held[(centre, ref)] += int(q)
    rows = 0
    for i, c in enumerate(centres):
        on_hand, reserved, received, used, adjusted = out[i * 5:(i + 1) * 5]
        for ref in parts:
            v = [int(h.get(ref, 0)) for h in (on_hand, reserved, received, used, adjusted)]
            res.check(v[2] + v[4] - v[3] - v[1] == v[0] and min(v[:4]) >= 0,
                      "stock %s %s: received %d + adjusted %d - consumed %d - reserved %d != on hand %d, or negative" % (
                          c, ref, v[2], v[4], v[3], v[1], v[0]))
            res.check(v[3] == consumed[(c, ref)], "stock %s %s: consumed %d, the repaired tickets used %d" % (
                c, ref, v[3], consumed[(c, ref)]))
            res.check(v[1] == held[(c, ref)], "stock %s %s: reserved %d, the tickets hold %d" % (
                c, ref, v[1], held[(c, ref)]))
            res.check(v[4] == 0, "stock %s %s: adjusted %d, no adjustment was made" % (c, ref, v[4]))
            rows += 1
    for lc in book.lifecycles:
        if lc.done:
            need = r.hgetall(cl.key("parts_need:" + lc.tid))
            hold = r.hgetall(cl.key("parts_held:" + lc.tid))
            res.check(not need and not hold, "%s is %s but still needs %s and holds %s" % (lc.tid, lc.final, need, hold))
    for k in scan(r, cl.key("backorder:*")):
        for tid in r.zrange(k, 0, -1):
            res.check(r.hget(cl.key("ticket:" + tid), "state") == "waiting_parts",
                      "%s waits in %s but is %s" % (tid, k, r.hget(cl.key("ticket:" + tid), "state")))
    res.fig("stock_rows", rows)
    res.fig("parts_consumed", sum(consumed.values()))
    res.check(rows > 0 and sum(consumed.values()) > 0, "no stock row or consumption to check")


def check_notifications(cl, res, book, chaos, tally):
    """Each ticket has exactly the messages its steps call for, each sent, each at the peers once but for the
    documented crash window."""
    r = cl.redis()
    ids = r.zrange(cl.key("notifs:all"), 0, -1)
    notifs = hgetall_many(cl, ["notif:" + i for i in ids])
    notifs = {k[len("notif:"):]: v for k, v in notifs.items()}
    missing_records = 0
    for lc in book.lifecycles:
        if not lc.done:
            continue
        got = collections.Counter(tuple(n.split(":")[1:3]) for n in r.lrange(cl.key("notifs:" + lc.tid), 0, -1))
        want = collections.Counter({(ev, ch): k for ev, k in lc.notices.items() for ch in ("sms", "email")})
        if got != want:
            missing_records += sum((want - got).values())
            res.check(False, "%s (%s): notifications %s, want %s" % (lc.tid, lc.kind, sorted(got.items()),
                                                                      sorted(want.items())))
    status = collections.Counter()
    for nid, n in notifs.items():
        status["%s:%s" % (n.get("channel"), n.get("status"))] += 1
        res.check(n.get("status") in FINAL_OK.get(n.get("channel"), ()), "%s is %s (%s)" % (
            nid, n.get("status"), n.get("last_answer")))
    res.fig("notifications", dict(sorted(status.items())))

    def window(n, t1, t2, server=None):
        """The documented crash window: counted, and the sending sav-notification (or, for an e-mail, the server
        that kept the first copy without answering) died in between."""
        return int(n.get("resent_after_crash") or 0) >= 1 and (
            chaos.died_after("notification", t1, t2) or (server is not None and chaos.died_after(server, t1, t2)))

    def kills_near(t1, t2):
        return [(round(k, 3), v) for k, v, _ in chaos.kill_log if t1 - 3 <= k <= t2]

    # SMS: every part accepted once by the SMSC instances, but for the crash window.
    sms = {k: v for k, v in notifs.items() if v.get("channel") == "sms"}
    tr = Traffic(res, sms, chaos.smscs, "chaos: ")
    lost_sms, dup_sms, in_window = [], [], 0
    first_ids = sorted((p.first_id, p) for p in chaos.smscs)
    logged = {p.name: {rec.get("message_id") for rec in p.records() if rec.get("cmd") == "submit_sm_resp"}
              for p in chaos.smscs}
    for nid, n in sms.items():
        spelled = (n.get("message_ids") or "").split(";")
        for key in tr.parts_of(nid):
            ok = sorted(tr.ok_submits(key), key=lambda x: x["t"])
            if not ok:
                # The SMSC answered (the id is recorded) but died before it logged its answer.
                mid = spelled[key[1]].split(",")[0] if key[1] < len(spelled) else ""
                inst = [p for f, p in first_ids if mid and f <= int(mid, 16) < f + 4096]
                if not (inst and inst[0].proc is None and mid not in logged[inst[0].name]):
                    lost_sms.append(key)
                continue
            if len(ok) > 1:
                dup_sms.append((key, len(ok) - 1))
                if window(n, ok[0]["t"], ok[-1]["t"]):
                    in_window += len(ok) - 1
                else:
                    res.check(False, "SMS %s part %d accepted %d times (at %s), resent_after_crash %s, the "
                              "sav-notification that sent it killed: %s; kills then: %s" % (
                                  nid, key[1] + 1, len(ok), [round(x["t"], 3) for x in ok],
                                  n.get("resent_after_crash"), chaos.died_after("notification", ok[0]["t"],
                                                                                ok[-1]["t"]),
                                  kills_near(ok[0]["t"], ok[-1]["t"])))
    res.check(not lost_sms, "%d SMS part(s) never accepted by the SMSC: %s" % (len(lost_sms), lost_sms[:5]))

    # E-mails: each Message-ID once at the SMTP instances, but for the crash window.
    mails = {message_id(k, MAIL_DOMAIN): (k, v) for k, v in notifs.items() if v.get("channel") == "email"}
    arrivals = collections.defaultdict(list)
    for peer in chaos.smtps:
        for name, raw, _ in peer.messages():
            arrivals[peer_ids(raw)].append(os.path.getmtime(os.path.join(peer.folder, name)))
    unexpected = sorted(set(arrivals) - set(mails))
    res.check(not unexpected, "unexpected Message-IDs at the SMTP server: %s" % unexpected[:5])
    lost_mail, dup_mail = [], []
    for mid, (nid, n) in mails.items():
        ts = sorted(arrivals.get(mid, []))
        if not ts:
            lost_mail.append(nid)
        elif len(ts) > 1:
            dup_mail.append((nid, len(ts) - 1))
            if window(n, ts[0], ts[-1], "smtp"):
                in_window += len(ts) - 1
            else:
                res.check(False, "e-mail %s received %d times (at %s), resent_after_crash %s, the sav-notification "
                          "that sent it killed: %s; kills then: %s" % (
                              nid, len(ts), [round(t, 3) for t in ts], n.get("resent_after_crash"),
                              chaos.died_after("notification", ts[0], ts[-1]), kills_near(ts[0], ts[-1])))
    res.check(not lost_mail, "%d e-mail(s) never reached the SMTP server: %s" % (len(lost_mail), lost_mail[:5]))
    tally.losses += missing_records + len(lost_sms) + len(lost_mail)
    tally.duplicates = sum(k for _, k in dup_sms) + sum(k for _, k in dup_mail)
    tally.in_window = in_window
    res.fig("sms_parts", sum(len(tr.parts_of(n)) for n in sms))
    res.fig("emails", len(mails))
    res.fig("resent_after_crash", sum(int(n.get("resent_after_crash") or 0) for n in notifs.values()))
    res.check(sms and mails and sum(len(v) for v in arrivals.values()) > 0,
              "no SMS or e-mail to check (%d SMS, %d e-mails)" % (len(sms), len(mails)))


def check_outboxes(cl, res, tally):
    r = cl.redis()
    keys = scan(r, cl.key("outbox:*"))
    depth = {k: r.xlen(k) for k in keys}
    res.check(keys and not any(depth.values()), "outboxes not drained: %s" % depth)
    for q in ("mail:queue", "mail:sending", "mail:sending:failed", "sms:queue", "sms:sending", "sms:sending:failed"):
        n = r.zcard(cl.key(q))
        res.check(n == 0, "%s holds %d entries" % (q, n))
    tally.dead_letters = r.xlen(cl.key("deadletter"))
    for entry in r.xrange(cl.key("deadletter"), count=5):
        res.check(False, "dead letter: %s" % (entry,))
    res.fig("outboxes_checked", len(keys))


# ---------------------------------------------------------------- the test

def test_chaos(cl):
    res = Result()
    seconds = int(os.environ.get("SAV_CHAOS_SECONDS") or DEFAULT_SECONDS)
    seed = int(os.environ.get("SAV_TEST_SEED") or random.randrange(1 << 30))
    names = os.environ.get("SAV_CHAOS_VICTIMS")
    victims = list(VICTIMS) if names is None else [v for v in names.split(",") if v in VICTIMS]
    rng = random.Random(seed)
    return drive(cl, res, Chaos(cl, res, rng, victims), seconds, seed, rng)


def drive(cl, res, chaos, seconds, seed, rng):
    """Starts chaos's cluster, runs the workers for `seconds` while chaos kills its victims, then checks every
    invariant and prints the summary line; returns res."""
    print("chaos: %d s, seed %d, victims %s" % (seconds, seed, ",".join(chaos.victims) or "none"), flush=True)
    book = Book(res)
    tally = Tally()
    stop = threading.Event()
    try:
        chaos.start()
        setup = Worker(0, cl, book, random.Random(seed), stop, chaos.reader)
        for c in sorted(CENTRES):
            for ref in STOCKED:
                setup.op(None, "parts receive", c, ref, 1000, "--reason", "stock initial")
        workers = [Worker(i + 1, cl, book, random.Random(seed * 31 + i), stop, chaos.reader) for i in range(WORKERS)]
        threads = [threading.Thread(target=w.run, name="chaos-worker-%d" % w.idx, daemon=True) for w in workers]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        chaos.run(t0 + seconds)
        stop.set()
        chaos.all_up()
        for t in threads:
            t.join(OP_PATIENCE_S + 2 * WAIT_PATIENCE_S)
            res.check(not t.is_alive(), "%s still running long after the end" % t.name)
        chaos.all_up()
        bound = max(SETTLE_S, seconds // 2)
        waited, left = settle(cl, chaos, bound)
        res.fig("settle_s", round(waited, 1))
        res.check(not left, "still moving %d s after the end: %s" % (bound, left))
        check_replays(cl, res, book, REPLAY_PER_MINUTE * max(1, seconds // 60), rng)
        check_ops(cl, res, book, tally)
        check_timelines(cl, res, book, tally)
        check_numbering(cl, res, book)
        check_stock(cl, res, book)
        check_notifications(cl, res, book, chaos, tally)
        check_outboxes(cl, res, tally)
    finally:
        stop.set()
        chaos.stop_peers()
    ok = sum(1 for o in book.ops if o.rc == 0)
    refused = sum(1 for o in book.ops if o.rc in (2, 3))
    res.fig("lifecycles", dict(collections.Counter(lc.kind for lc in book.lifecycles if lc.done)))
    res.fig("exit4_retried", sum(1 for o in book.ops if o.attempts > 1))
    summary = ("chaos: seconds=%d seed=%d operations=%d (ok=%d refused=%d) kills=%d (%s) losses=%d duplicates=%d "
               "(in window %d) stuck=%d dead_letters=%d" % (
                   seconds, seed, len(book.ops), ok, refused, sum(chaos.kills.values()),
                   ",".join("%s:%d" % (v, chaos.kills[v]) for v in chaos.victims), tally.losses, tally.duplicates,
                   tally.in_window, tally.stuck, tally.dead_letters))
    print(summary, flush=True)
    res.fig("summary", "printed above")
    return res


TESTS = [("chaos", test_chaos)]


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--seconds", type=int)
    ap.add_argument("--seed", type=int)
    known, rest = ap.parse_known_args()
    if known.seconds is not None:
        os.environ["SAV_CHAOS_SECONDS"] = str(known.seconds)
    if known.seed is not None:
        os.environ["SAV_TEST_SEED"] = str(known.seed)
    sys.argv = sys.argv[:1] + rest
    sys.exit(fixtures.standalone(TESTS, __doc__))
