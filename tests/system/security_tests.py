#!/usr/bin/python3
"""SAV system tests of security (issue 7, ZeroMQ and operators): CURVE on every socket, the ZAP handler that
admits only the configured keys, each request authorised by the identity's role, the identity recorded as the
actor, key files and the authorised clients file. Every other test module runs with CURVE on too, so the normal
flows (inter-service events included) already cover the encrypted path.

Usage: /usr/bin/python3 tests/system/security_tests.py --bin build/bin [--only NAME[,NAME...]] [--keep]

Standalone it prints one PASS/FAIL line per test with its figures and ends with "N passed, N failed";
tests/system/run.py also runs TESTS (name, function(cluster) -> Result, the cluster created, not started).

Every refusal is checked to change nothing: a dump of every Redis key (type and value) is taken before and
compared after, the pipeline drained first.

Tests: unknown_and_plain_clients (an unknown key pair, refused by every service's ZAP handler and logged with
its key; a plain socket and a wrong server key, which get no answer at all, logged as refused connections;
savctl with CURVE off against CURVE services), roles_and_actors (front_desk, technician, billing, manager, admin
through a chargeable repair: what each may not do is refused with exit 6 and logged; what each does is recorded
under its name; a service's key cannot run commands, an operator's key cannot send events),
identities_and_key_files (savctl keys generate, an identity added and revoked while the services run, a bad
edit of the clients file keeping the identities in force, a connection whose identity was revoked, bad key
files refused by --check-config and at start, the production example config, no secret in any log), curve_off
(security.curve = off: plain sockets, anonymous actor, a CURVE client refused).
"""

import collections
import json
import os
import shutil
import stat
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixtures  # noqa: E402
import harness  # noqa: E402
from fixtures import Result  # noqa: E402
from harness import SERVICES  # noqa: E402

import zmq  # noqa: E402
from zmq.utils.monitor import recv_monitor_message  # noqa: E402

MT_COMMAND, MT_COMMAND_RESULT, MT_TICKET_READY = 14, 15, 105
ERR_FORBIDDEN = 6
EVENT_FAILED_NO_DETAIL, EVENT_FAILED_PROTOCOL, EVENT_FAILED_AUTH = 0x0800, 0x2000, 0x4000
MECHANISM_MISMATCH = 0x11000002
CATALOG = fixtures.CATALOG_PATH
PRODUCTION_CONF = os.path.join(harness.REPO_ROOT, "deploy", "production", "sav.conf")
OPERATORS = (("desk1", "front_desk"), ("tech1", "technician"), ("bill1", "billing"), ("mgr1", "manager"))


# ---------------------------------------------------------------- helpers

def snapshot(cl):
    """Every key of Redis with its type and value."""
    r = cl.redis()
    out = {}
    for k in r.scan_iter("*", count=1000):
        t = r.type(k)
        if t == "string":
            v = r.get(k)
        elif t == "hash":
            v = r.hgetall(k)
        elif t == "list":
            v = r.lrange(k, 0, -1)
        elif t == "set":
            v = sorted(r.smembers(k))
        elif t == "zset":
            v = r.zrange(k, 0, -1, withscores=True)
        elif t == "stream":
            v = r.xrange(k)
        else:
            v = None
        out[k] = (t, v)
    return out


def changed_keys(before, after):
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def settle(cl):
    """Waits until every outbox is empty, then a little more, so that nothing moves while a refusal is tried."""
    fixtures.wait_drained(cl, 15)
    time.sleep(0.3)


def as_(cl, res, who, *args, want=0, err_has=None):
    """Runs `savctl --json --identity who ARGS`; records a problem unless it exits want. Returns the JSON or None."""
    r = cl.savctl(*args, json_out=True, identity=who)
    cmd = "savctl --identity %s %s" % (who, " ".join(map(str, args)))
    if res.check(r.returncode == want, "%s: exit %d, want %d (stderr %r)" % (cmd, r.returncode, want,
                                                                           r.stderr.strip()[:300])) and err_has:
        res.check(err_has in r.stderr, "%s: stderr %r does not say %r" % (cmd, r.stderr.strip()[:300], err_has))
    if r.returncode != 0:
        return None
    try:
        return json.loads(r.stdout)
    except ValueError:
        res.check(False, "%s printed invalid JSON: %r" % (cmd, r.stdout[:300]))
        return None


def forbidden(cl, res, counts, who, *args, service, what):
    """Runs a command the identity's role does not allow: exit 6 naming the action, nothing changed in Redis, the
    refusal in the service's log. Counts it under what when every check held."""
    settle(cl)
    before = snapshot(cl)
    r = cl.savctl(*args, identity=who)
    after = snapshot(cl)
    cmd = "savctl --identity %s %s" % (who, " ".join(map(str, args)))
    ok = res.check(r.returncode == harness.EXIT_FORBIDDEN and "may not run" in r.stderr,
                   "%s: exit %d %r, want 6 'may not run'" % (cmd, r.returncode, r.stderr.strip()[:300]))
    ok &= res.check(not changed_keys(before, after), "%s changed Redis: %s" % (cmd, changed_keys(before, after)[:10]))
    logged = "%s from %s (role" % (what, who)
    ok &= res.check(harness.wait_until(lambda: log_lines(cl, service, logged), 5),
                    "%s: sav-%s's log has no %r" % (cmd, service, logged))
    counts[what] += ok
    return ok


def log_of(cl, service):
    try:
        with open(os.path.join(cl.dir, service + ".log"), encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def log_lines(cl, service, *needles):
    return [line for line in log_of(cl, service).splitlines() if all(n in line for n in needles)]


def client(cl, ctx, service, identity, server_key=None):
    """A DEALER to a service, CURVE client as identity (None: plain), with a monitor of its handshake failures
    attached before it connects."""
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    if identity is not None:
        s.curve_serverkey = (server_key or cl.public_keys[service]).encode()
        s.curve_publickey = cl.public_keys[identity].encode()
        s.curve_secretkey = cl.secret_keys[identity].encode()
    client.n = getattr(client, "n", 0) + 1
    mon = s.get_monitor_socket(EVENT_FAILED_NO_DETAIL | EVENT_FAILED_PROTOCOL | EVENT_FAILED_AUTH,
                               addr="inproc://security-test-monitor-%d" % client.n)
    s.connect(cl.endpoints[service])
    return s, mon


def exchange(cl, ctx, service, identity, frames, server_key=None, timeout=2.0, after_failure=0.3):
    """Sends frames and waits for a reply; returns (reply frames or None, [(event, value)] handshake failures).
    Waits only after_failure seconds more once a handshake failure was seen (libzmq keeps reconnecting)."""
    s, mon = client(cl, ctx, service, identity, server_key)
    events, reply = [], None
    try:
        s.send_multipart(frames)
        deadline = time.monotonic() + timeout
        poller = zmq.Poller()
        poller.register(s, zmq.POLLIN)
        poller.register(mon, zmq.POLLIN)
        while time.monotonic() < deadline and reply is None:
            for sock, _ in poller.poll(50):
                if sock is s:
                    reply = s.recv_multipart()
                else:
                    m = recv_monitor_message(mon)
                    events.append((m["event"], m["value"]))
                    deadline = min(deadline, time.monotonic() + after_failure)
    finally:
        s.disable_monitor()
        mon.close(0)
        s.close(0)
    return reply, events


def ping_frames(tag):
    return [b"", harness.encode_envelope("sec-%s-%d" % (tag, time.monotonic_ns()), harness.MT_PING, b"",
                                         source="security-test")]


def command_body(name, args=(), request_id=None):
    body = harness.pb_field_bytes(1, name)
    if request_id:
        body += harness.pb_field_bytes(2, request_id)
    for k, v in args:
        body += harness.pb_field_bytes(3, harness.pb_field_bytes(1, k) + harness.pb_field_bytes(2, v))
    return body


def error_of(reply):
    """The ErrorReply of a reply ([empty][envelope]) as a dict, or None when it is not one."""
    if not reply:
        return None
    env = harness.decode_envelope(reply[-1])
    return harness.decode_error_reply(env["body"]) if env["type"] == harness.MT_ERROR_REPLY else None


def timeline_actor(data, event):
    return [e.get("actor") for e in data.get("timeline") or [] if e.get("event") == event]


# ---------------------------------------------------------------- 1. unknown_and_plain_clients

def test_unknown_and_plain_clients(cl):
    res = Result()
    cl.start_all()
    fixtures.run(cl, res, "customer", "add", "--name", "Jeanne Martin", "--phone", "06 12 34 56 78")
    cl.make_keys("intruder")  # a key pair in the keys directory, listed nowhere
    settle(cl)
    base = snapshot(cl)
    counts = collections.Counter()

    # savctl with the unknown key: refused by the ZAP handler of every service it asks, exit 6.
    for args in (["customer", "add", "--name", "Mallory"], ["ticket", "show", "T-2026-000001"],
                 ["catalog", "load", "--file", CATALOG], ["parts", "stock", "PAR-01"], ["invoice", "list"]):
        r = cl.savctl(*args, identity="intruder")
        counts["savctl_unknown_key"] += res.check(
            r.returncode == harness.EXIT_FORBIDDEN and "refused identity intruder" in r.stderr and
            "ZAP status 400" in r.stderr, "savctl --identity intruder %s: exit %d %r, want 6 with the ZAP refusal" % (
                " ".join(args), r.returncode, r.stderr.strip()[:300]))
    r = cl.savctl("ping", json_out=True, identity="intruder")
    statuses = sorted(x.get("status") for x in json.loads(r.stdout or "{}").get("services", []))
    counts["ping_refused"] = statuses.count("refused")
    res.check(r.returncode == harness.EXIT_FORBIDDEN and statuses == ["refused"] * 4,
              "savctl ping as intruder: exit %d, statuses %s, want 6 and refused x4" % (r.returncode, statuses))

    ctx = zmq.Context()
    try:
        for svc in SERVICES:
            # A raw CURVE client with the unknown key: no answer, the handshake refused with ZAP status 400.
            reply, events = exchange(cl, ctx, svc, "intruder", ping_frames("intruder"))
            counts["raw_unknown_key"] += res.check(reply is None and (EVENT_FAILED_AUTH, 400) in events,
                                                   "%s: unknown key got %r, handshake events %s" % (svc, reply, events))
            # A plain (non-CURVE) socket cannot talk to a CURVE ROUTER at all (kept trying for a second). Whichever
            # side reads the other's greeting first sees the mechanism mismatch; the other sees the hang-up.
            reply, events = exchange(cl, ctx, svc, None, ping_frames("plain"), after_failure=1.0)
            counts["raw_plain"] += res.check(
                reply is None and events and all(e == (EVENT_FAILED_PROTOCOL, MECHANISM_MISMATCH) or
                                                 e[0] == EVENT_FAILED_NO_DETAIL for e in events),
                "%s: plain socket got %r, handshake events %s" % (svc, reply, events))
            # An authorised key that does not know the server's public key.
            reply, events = exchange(cl, ctx, svc, "admin", ping_frames("wrongkey"),
                                     server_key=cl.public_keys["intruder"])
            counts["raw_wrong_server_key"] += res.check(reply is None and events,
                                                        "%s: wrong server key got %r, events %s" % (svc, reply, events))
    finally:
        ctx.destroy(linger=0)

    # savctl with CURVE off against CURVE services: no answer, and it says why.
    r = cl.savctl("ticket", "show", "T-2026-000001", env={"SAV_SECURITY_CURVE": "off", "SAV_CLIENT_ATTEMPTS": "1"})
    counts["savctl_plain"] += res.check(r.returncode == harness.EXIT_UNAVAILABLE and
                                        "CURVE on one side only" in r.stderr,
                                        "savctl with curve off: exit %d %r, want 4 naming the mechanisms" % (
                                            r.returncode, r.stderr.strip()[:300]))
    after = snapshot(cl)
    res.check(not changed_keys(base, after), "refused clients changed Redis: %s" % changed_keys(base, after)[:10])
    for svc in SERVICES:
        zap_logged = log_lines(cl, svc, "refused a CURVE client", cl.public_keys["intruder"])
        plain_logged = log_lines(cl, svc, "refused a connection", "different security mechanisms") or log_lines(
            cl, svc, "refused a connection", "hung up during the handshake")
        res.check(zap_logged, "sav-%s did not log the unknown key %s" % (svc, cl.public_keys["intruder"]))
        res.check(plain_logged, "sav-%s did not log the plain connection" % svc)
        counts["logged"] += bool(zap_logged and plain_logged)
    r = cl.savctl("ping")
    res.check(r.returncode == 0, "savctl ping as admin after the refusals: exit %d %s" % (r.returncode, r.stderr))
    for k, v in counts.items():
        res.fig(k, v)
    return res


# ---------------------------------------------------------------- 2. roles_and_actors

def test_roles_and_actors(cl):
    res = Result()
    for name, role in OPERATORS:
        cl.add_identity(name, role)
    cl.start_all()
    counts = collections.Counter()

    # whoami: every service confirms the identity and its role.
    for name, role in OPERATORS + (("admin", "admin"),):
        d = as_(cl, res, name, "whoami") or {}
        rows = d.get("services") or []
        ok = res.check(len(rows) == 4 and all(x.get("status") == "confirmed" and x.get("identity") == name and
                                              x.get("role") == role and x.get("authenticated") is True for x in rows),
                       "whoami as %s: %r" % (name, rows))
        counts["whoami_confirmed"] += ok
        here = {x.get("name"): x.get("commands") for x in rows}
        if name == "desk1":
            res.check("diagnose" not in (here.get("diagnostics") or []) and "customer.add" in (here.get("intake") or []),
                      "whoami desk1 commands %r" % here)
        if name == "tech1":
            res.check("diagnose" in (here.get("diagnostics") or []) and not here.get("billing"),
                      "whoami tech1 commands %r" % here)

    # The front desk registers the customer and the product and opens the ticket (out of every guarantee).
    cid = (as_(cl, res, "desk1", "customer", "add", "--name", "Paul Durand", "--phone", "06 98 76 54 32") or {}).get("id")
    as_(cl, res, "desk1", "product", "add", "--serial", "SN-SEC-1", "--model", "WM-7000", "--customer", cid,
        "--delivered", "2019-03-01")
    tid = (as_(cl, res, "desk1", "ticket", "open", "--customer", cid, "--serial", "SN-SEC-1", "--kind", "repair",
               "--symptom", "ne chauffe plus") or {}).get("id")
    if not res.check(tid and cid, "could not open the ticket (customer %s, ticket %s)" % (cid, tid)):
        return res
    res.check(harness.wait_until(lambda: cl.redis().hget(cl.key("coverage:" + tid), "status"), 15),
              "%s: no coverage estimate within 15 s" % tid)
    diag = ["diagnose", tid, "--cause", "wear", "--action", "replace_parts", "--part", "RES-2000W", "--labour", "45"]
    forbidden(cl, res, counts, "desk1", *diag, service="diagnostics", what="refused diagnose")
    forbidden(cl, res, counts, "bill1", *diag, service="diagnostics", what="refused diagnose")
    d = as_(cl, res, "tech1", *diag) or {}
    res.check(d.get("state") == "awaiting_approval", "diagnose as tech1: %r" % d)
    res.check(harness.wait_until(lambda: cl.redis().hget(cl.key("quote:" + tid), "status") == "pending", 15),
              "%s: no pending quote within 15 s" % tid)
    forbidden(cl, res, counts, "tech1", "quote", "accept", tid, service="billing", what="refused quote.accept")
    d = as_(cl, res, "bill1", "quote", "accept", tid) or {}
    res.check(d.get("state") == "in_repair", "quote accept as bill1: %r" % d)
    forbidden(cl, res, counts, "desk1", "repair", "done", tid, service="diagnostics", what="refused repair.done")
    d = as_(cl, res, "tech1", "repair", "done", tid, "--note", "résistance remplacée") or {}
    res.check(d.get("state") == "ready", "repair done as tech1: %r" % d)
    res.check(harness.wait_until(lambda: cl.redis().hget(cl.key("ticket:" + tid), "invoice_id"), 15),
              "%s: no invoice within 15 s" % tid)
    inv = cl.redis().hget(cl.key("ticket:" + tid), "invoice_id")
    due = cl.redis().hget(cl.key("invoice:%s" % inv), "balance_cents")
    pay = ["payment", "record", inv, "--amount", due, "--method", "card"]
    forbidden(cl, res, counts, "tech1", *pay, service="billing", what="refused payment.record")
    forbidden(cl, res, counts, "desk1", *pay, service="billing", what="refused payment.record")
    d = as_(cl, res, "bill1", *pay) or {}
    res.check(d.get("status") == "paid", "payment record as bill1: %r" % d)
    forbidden(cl, res, counts, "bill1", "ticket", "pickup", tid, service="intake", what="refused ticket.pickup")
    forbidden(cl, res, counts, "tech1", "customer", "add", "--name", "X", service="intake", what="refused customer.add")
    forbidden(cl, res, counts, "desk1", "parts", "receive", "PAR-01", "RES-2000W", "5", service="diagnostics",
              what="refused parts.receive")
    d = as_(cl, res, "desk1", "ticket", "pickup", tid) or {}
    res.check(d.get("state") == "closed", "pickup as desk1: %r" % d)
    as_(cl, res, "tech1", "parts", "receive", "PAR-01", "RES-2000W", "2", "--reason", "livraison")
    moves = [json.loads(m) for m in cl.redis().lrange(cl.key("stock:PAR-01:moves"), -1, -1)]
    res.check([m.get("by") for m in moves] == ["tech1"], "the last stock move of PAR-01 %r, want by tech1" % moves)

    # The catalog: only admin publishes one.
    version = cl.redis().get(cl.key("catalog:version"))
    for who in ("bill1", "mgr1", "desk1", "tech1"):
        forbidden(cl, res, counts, who, "catalog", "load", "--file", CATALOG, service="intake", what="refused catalog.load")
    d = as_(cl, res, "admin", "catalog", "load", "--file", CATALOG) or {}
    res.check(str(d.get("version")) == str(int(version or 0) + 1), "catalog load as admin: %r (was version %s)" % (
        d, version))
    res.check(log_lines(cl, "intake", "catalog version", "published by admin"), "intake did not log who published")
    # The manager may do what each desk role may.
    for args in (["customer", "list"], ["parts", "stock", "PAR-01"], ["invoice", "list"], ["ticket", "list"]):
        counts["manager_allowed"] += as_(cl, res, "mgr1", *args) is not None

    # Actors: each step under the identity that ran it.
    data = fixtures.show(cl, tid)
    want = {"ticket.received": ["desk1"], "verdict.recorded": ["tech1"], "quote.accepted": ["bill1"],
            "repair.done": ["tech1"], "payment.recorded": ["bill1"], "pickup": ["desk1"]}
    got = {ev: timeline_actor(data, ev) for ev in want}
    res.check(got == want, "%s: timeline actors %r, want %r" % (tid, got, want))
    counts["actors_checked"] = sum(got[ev] == want[ev] for ev in want)
    by = (data.get("diagnosis") or {}).get("by")
    res.check(by == "tech1", "%s: diagnosis by %r, want tech1" % (tid, by))
    payments = [json.loads(p) for p in cl.redis().lrange(cl.key("invoice:%s:payments" % inv), 0, -1)]
    res.check([p.get("by") for p in payments] == ["bill1"], "%s payments %r, want one by bill1" % (inv, payments))

    # Raw messages: a service's key cannot run commands, an operator's key (even admin's) cannot send events.
    ctx = zmq.Context()
    try:
        settle(cl)
        before = snapshot(cl)
        body = command_body("customer.list")
        reply, _ = exchange(cl, ctx, "intake", "billing",
                            [b"", harness.encode_envelope("sec-svc-cmd", MT_COMMAND, body, source="billing")])
        er = error_of(reply)
        counts["service_command_refused"] += res.check(
            er and er["code"] == ERR_FORBIDDEN and "billing (role service) may not run customer.list" in er["message"],
            "billing's key sending customer.list to intake got %r" % (er or reply))
        ready = harness.pb_field_bytes(1, "repaired") + harness.pb_field_bytes(2, "repair.done")
        for who in ("admin", "tech1"):
            reply, _ = exchange(cl, ctx, "billing", who, [b"", harness.encode_envelope(
                "sec-forged-ready-" + who, MT_TICKET_READY, ready, ticket_id=tid, source="diagnostics")])
            er = error_of(reply)
            counts["operator_event_refused"] += res.check(
                er and er["code"] == ERR_FORBIDDEN and "may not run ticket.ready" in er["message"],
                "%s's key sending ticket.ready to billing got %r" % (who, er or reply))
        after = snapshot(cl)
        res.check(not changed_keys(before, after), "refused raw messages changed Redis: %s" % changed_keys(
            before, after)[:10])
    finally:
        ctx.destroy(linger=0)
    for k, v in counts.items():
        res.fig(k.replace("refused ", "refused_").replace(".", "_"), v)
    fixtures.check_drained(cl, res)
    return res


# ---------------------------------------------------------------- 3. identities_and_key_files

def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def check_config(cl, service, env):
    return subprocess.run([cl.binary("sav-" + service), "--config", cl.config, "--check-config"], capture_output=True,
                          text=True, timeout=30, stdin=subprocess.DEVNULL, env=dict(os.environ, **env))


def test_identities_and_key_files(cl):
    res = Result()
    cl.start_all()
    counts = collections.Counter()

    # savctl keys generate with a role: the pair (0600 / 0644), the clients line, usable at once.
    r = cl.savctl("--json", "keys", "generate", "tech9", "--role", "technician")
    d = json.loads(r.stdout) if r.returncode == 0 else {}
    key_path, pub_path = os.path.join(cl.keys_dir, "tech9.key"), os.path.join(cl.keys_dir, "tech9.pub")
    res.check(r.returncode == 0 and d.get("role") == "technician" and d.get("secret_key_file") == key_path,
              "keys generate tech9: exit %d %r %s" % (r.returncode, d, r.stderr.strip()))
    if not res.check(os.path.exists(key_path) and os.path.exists(pub_path), "tech9's key files are missing"):
        return res
    res.check(mode(key_path) == 0o600 and mode(pub_path) & 0o044 == 0o044, "modes %o %o, want 600 and readable" % (
        mode(key_path), mode(pub_path)))
    secret = [l for l in read(key_path).decode().splitlines() if l and not l.startswith("#")][0]
    public = [l for l in read(pub_path).decode().splitlines() if l and not l.startswith("#")][0]
    cl.public_keys["tech9"], cl.secret_keys["tech9"] = public, secret
    res.check(len(secret) == 40 and len(public) == 40 and d.get("public_key") == public,
              "tech9: key lengths %d/%d, printed %r" % (len(secret), len(public), d.get("public_key")))
    res.check(secret not in r.stdout + r.stderr, "keys generate printed the secret key")
    res.check("%s technician tech9" % public in read(cl.clients_file).decode(), "clients file lacks tech9's line")
    d = as_(cl, res, "tech9", "parts", "stock", "PAR-01")
    counts["new_identity_usable"] += d is not None
    d = as_(cl, res, "tech9", "whoami") or {}
    res.check([x.get("role") for x in d.get("services") or []] == ["technician"] * 4, "whoami tech9: %r" % d)

    # Refused generations change nothing.
    files_before = {n: read(os.path.join(cl.keys_dir, n)) for n in sorted(os.listdir(cl.keys_dir))}
    for args, want, why in ((["tech9", "--role", "technician"], 2, "already exists"),
                            (["x9", "--role", "superuser"], 1, "unknown role"),
                            (["../x9", "--role", "admin"], 1, "identity name"),
                            (["intake", "--role", "admin"], 1, "services take no --role"),
                            (["x9", "--role", "admin", "--dir", os.path.join(cl.clients_file, "sub")], 2, "")):
        r = cl.savctl("keys", "generate", *args)
        counts["generate_refused"] += res.check(r.returncode == want and why in r.stderr,
                                                "keys generate %s: exit %d %r, want %d %r" % (
                                                    " ".join(args), r.returncode, r.stderr.strip(), want, why))
    files_after = {n: read(os.path.join(cl.keys_dir, n)) for n in sorted(os.listdir(cl.keys_dir))}
    res.check(files_before == files_after, "refused key generations changed the keys directory: %s" % sorted(
        set(files_before) ^ set(files_after)))

    # A bad edit of the clients file: logged by every service with file:line, the identities in force stay.
    good = read(cl.clients_file)
    with open(cl.clients_file, "ab") as f:
        f.write(b"this line is not an identity\n")
    bad_line = len(good.decode().splitlines()) + 1
    where = "%s:%d:" % (cl.clients_file, bad_line)
    for svc in SERVICES:
        counts["bad_edit_logged"] += res.check(harness.wait_until(
            lambda: log_lines(cl, svc, "authorised clients not read again", where), 5),
            "sav-%s did not log the bad clients file (%s)" % (svc, where))
    counts["kept_after_bad_edit"] += as_(cl, res, "tech9", "parts", "stock", "PAR-01") is not None
    counts["kept_after_bad_edit"] += cl.savctl("ping").returncode == 0

    # Revocation while running: an open connection of tech9 is refused on its next message, new ones at the ZAP.
    ctx = zmq.Context()
    try:
        s, mon = client(cl, ctx, "diagnostics", "tech9")
        s.send_multipart(ping_frames("tech9-before"))
        first = s.recv_multipart() if s.poll(3000) else None
        res.check(first and harness.decode_envelope(first[-1])["type"] == harness.MT_PONG,
                  "tech9's ping before the revocation: %r" % first)
        with open(cl.clients_file, "wb") as f:
            f.write(b"".join(l + b"\n" for l in good.splitlines() if b" tech9" not in l))
        time.sleep(1.5)  # every service reads the file again within a second
        s.send_multipart(ping_frames("tech9-after"))
        later = s.recv_multipart() if s.poll(3000) else None
        er = error_of(later)
        counts["revoked_connection_refused"] += res.check(
            er and er["code"] == ERR_FORBIDDEN and "tech9 is not an authorised identity" in er["message"],
            "tech9's ping on its open connection after the revocation: %r" % (er or later))
        s.disable_monitor()
        mon.close(0)
        s.close(0)
    finally:
        ctx.destroy(linger=0)
    r = cl.savctl("parts", "stock", "PAR-01", identity="tech9")
    counts["revoked_refused"] += res.check(r.returncode == harness.EXIT_FORBIDDEN and "refused identity tech9" in
                                           r.stderr, "tech9 after the revocation: exit %d %r" % (
                                               r.returncode, r.stderr.strip()))
    res.check(log_lines(cl, "diagnostics", "refused a CURVE client", public), "diagnostics did not log tech9's key")

    # --check-config and the start refuse bad key material, naming the file; a good copy passes.
    keys2 = os.path.join(cl.dir, "keys2")
    shutil.copytree(cl.keys_dir, keys2)
    clients2 = os.path.join(keys2, "clients")
    env2 = {"SAV_SECURITY_KEYS_DIR": keys2, "SAV_SECURITY_CLIENTS": clients2}
    r = check_config(cl, "intake", env2)
    res.check(r.returncode == 0 and "with its keys and authorised clients" in r.stdout,
              "check-config on a good copy of the keys: exit %d %s%s" % (r.returncode, r.stdout, r.stderr))
    dup_line = len(read(clients2).splitlines()) + 1
    with open(clients2, "a") as f:
        f.write("%s admin admin\n" % zmq.curve_keypair()[0].decode())
    want = "%s:%d: admin: the name already belongs to admin" % (clients2, dup_line)
    r = check_config(cl, "intake", env2)
    counts["check_config_refused"] += res.check(r.returncode == 1 and want in r.stderr,
                                                "check-config with a duplicate name: exit %d %r" % (
                                                    r.returncode, r.stderr.strip()))
    with open(clients2, "wb") as f:
        f.write(good)
    os.chmod(os.path.join(keys2, "billing.key"), 0o644)
    r = check_config(cl, "billing", env2)
    counts["check_config_refused"] += res.check(r.returncode == 1 and "billing.key is a secret key readable by others"
                                                in r.stderr and "chmod 600" in r.stderr,
                                                "check-config with billing.key 0644: exit %d %r" % (
                                                    r.returncode, r.stderr.strip()))
    os.unlink(os.path.join(keys2, "notification.pub"))
    r = check_config(cl, "intake", env2)
    counts["check_config_refused"] += res.check(r.returncode == 1 and "notification.pub" in r.stderr,
                                                "check-config without notification.pub: exit %d %r" % (
                                                    r.returncode, r.stderr.strip()))
    # Started for real, a service with a bad key refuses to start before binding anything (the running one stays).
    p = subprocess.run([cl.binary("sav-billing"), "--config", cl.config], capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL, env=dict(os.environ, **env2))
    counts["start_refused"] += res.check(p.returncode == 1 and "readable by others" in p.stderr,
                                         "sav-billing with a 0644 secret key: exit %d %r" % (p.returncode, p.stderr))
    res.check(cl.service_alive("billing"), "the running sav-billing died")
    # The production example parses, with the keys of this cluster.
    r = subprocess.run([cl.binary("sav-intake"), "--config", PRODUCTION_CONF, "--check-config"], capture_output=True,
                       text=True, timeout=30, stdin=subprocess.DEVNULL,
                       env=dict(os.environ, SAV_SECURITY_KEYS_DIR=cl.keys_dir, SAV_SECURITY_CLIENTS=cl.clients_file,
                                SAV_INTAKE_REDIS_PASSWORD="file:" + cl.redis_password_files["intake"],
                                SAV_REDIS_SENTINEL_PASSWORD=cl.secret("sentinel", "sentinel-password")))
    res.check(r.returncode == 0, "deploy/production/sav.conf --check-config: exit %d %s%s" % (
        r.returncode, r.stdout, r.stderr))
    counts["production_config_valid"] += r.returncode == 0

    # No secret key in any log.
    leaks = [(n, name) for n in os.listdir(cl.dir) if n.endswith(".log")
             for name, sec in cl.secret_keys.items() if sec in read(os.path.join(cl.dir, n)).decode("utf-8", "replace")]
    res.check(not leaks, "secret keys in the logs: %s" % leaks)
    res.fig("secrets_checked", len(cl.secret_keys))
    for k, v in counts.items():
        res.fig(k, v)
    return res


# ---------------------------------------------------------------- 4. curve_off

def test_curve_off(cl):
    res = Result()
    cl.curve = False
    cl.write_config(cl.config)
    cl.start_all()
    for svc in SERVICES:
        res.check(log_lines(cl, svc, "security.curve is off"), "sav-%s did not warn that CURVE is off" % svc)
    cid = (fixtures.run(cl, res, "customer", "add", "--name", "Jeanne Martin", "--phone", "06 12 34 56 78") or {}).get("id")
    fixtures.run(cl, res, "product", "add", "--serial", "SN-OFF-1", "--model", "WM-7000", "--customer", cid,
                 "--delivered", fixtures.today(-100).isoformat())
    tid = (fixtures.run(cl, res, "ticket", "open", "--customer", cid, "--serial", "SN-OFF-1", "--kind", "repair",
                        "--symptom", "ne chauffe plus") or {}).get("id")
    if res.check(tid, "ticket open with CURVE off failed"):
        res.check(harness.wait_until(lambda: cl.redis().hget(cl.key("ticket:" + tid), "state") == "in_diagnosis", 15),
                  "%s did not reach in_diagnosis" % tid)
        res.check(timeline_actor(fixtures.show(cl, tid), "ticket.received") == ["anonymous"],
                  "%s: ticket.received actor with CURVE off, want anonymous" % tid)
    r, d = cl.savctl_json("whoami")
    rows = (d or {}).get("services") or []
    res.check(r.returncode == 0 and len(rows) == 4 and all(x.get("identity") == "anonymous" and
                                                           x.get("authenticated") is False for x in rows),
              "whoami with CURVE off: exit %d %r" % (r.returncode, rows))
    fast = {"SAV_SECURITY_CURVE": "on", "SAV_CLIENT_ATTEMPTS": "1", "SAV_CLIENT_TIMEOUT_MS": "500"}
    r = cl.savctl("ping", env=fast)
    res.check(r.returncode == harness.EXIT_UNAVAILABLE, "a CURVE savctl against plain services: exit %d" %
              r.returncode)
    r = cl.savctl("ticket", "show", tid or "T-2026-000001", env=fast)
    res.check(r.returncode == harness.EXIT_UNAVAILABLE and "CURVE on one side only" in r.stderr,
              "a CURVE savctl against plain services: exit %d %r" % (r.returncode, r.stderr.strip()))
    fixtures.check_drained(cl, res)
    return res


# One Function of each service for its user to call; the others' are refused.
OWN_FUNCTION = {"intake": ("FCALL_RO", "ticket_list"), "diagnostics": ("FCALL_RO", "parts_stock"),
                "billing": ("FCALL_RO", "coverage_facts"), "notification": ("FCALL_RO", "ticket_contact")}
OTHERS_FUNCTION = {"intake": "sms_stop", "diagnostics": "payment_record", "billing": "customer_erase",
                   "notification": "invoice_issue"}


def test_redis_users(cl):
    """Each service reaches Redis as its own ACL user (savctl redis acl): it may call its own Functions, never
    another service's, nor anything outside SAV's keys or the commands the Functions library needs; the default
    user is off; a wrong password stops the service at start, naming the user and not the password."""
    import redis
    res = Result()
    cl.start_all()
    r = cl.redis()
    users = {c["user"] for c in r.client_list()}
    res.fig("connected_as", sorted(users))
    res.check(all(cl.redis_users[s][0] in users for s in SERVICES), "services not connected as their users: %s" % users)
    before = snapshot(cl)
    counts = collections.Counter()
    for s in SERVICES:
        name, pw = cl.redis_users[s]
        c = redis.Redis(host="127.0.0.1", port=cl.redis_port, username=name, password=pw, decode_responses=True)
        kind, fn = OWN_FUNCTION[s]
        try:
            c.execute_command(kind, fn, "1", cl.key("nothing"), cl.key(""), "x")
            counts["own_function_ok"] += 1
        except redis.exceptions.NoPermissionError as e:
            res.check(False, "%s may not call its own %s: %s" % (name, fn, e))
        except redis.exceptions.ResponseError:
            counts["own_function_ok"] += 1  # allowed, refused by the Function itself for the dummy arguments
        for cmd in (["FCALL", OTHERS_FUNCTION[s], "0"], ["FLUSHALL"], ["KEYS", "*"], ["CONFIG", "GET", "dir"],
                    ["EVAL", "return 1", "0"], ["SCRIPT", "FLUSH"], ["ACL", "LIST"], ["MODULE", "LIST"],
                    ["CLIENT", "KILL", "TYPE", "normal"], ["SET", "elsewhere:x", "1"], ["SHUTDOWN"], ["PUBLISH", "c", "m"]):
            try:
                c.execute_command(*cmd)
                res.check(False, "%s ran %s" % (name, " ".join(cmd)))
            except redis.exceptions.NoPermissionError:
                counts["refused"] += 1
            except redis.exceptions.ResponseError as e:
                res.check("NOPERM" in str(e) or "no permissions" in str(e), "%s %s: %s" % (name, cmd[0], e))
                counts["refused"] += 1
        c.close()
    try:
        redis.Redis(host="127.0.0.1", port=cl.redis_port).ping()
        res.check(False, "Redis answered without a password")
    except redis.exceptions.AuthenticationError:
        counts["default_user_refused"] += 1
    res.fig("refusals", dict(counts))
    res.check(counts["refused"] == 12 * len(SERVICES), "%d of %d forbidden calls refused" % (
        counts["refused"], 12 * len(SERVICES)))
    res.check(snapshot(cl) == before, "a refused call changed Redis")
    # Every write survives a restart: the AOF replay is not refused by the ACL (see docs/ARCHITECTURE.md).
    cl.kill_redis()
    cl._redis = None
    cl.start_redis()
    after_restart = snapshot(cl)
    res.check(after_restart == before, "a Redis restart lost %d key(s)" % len(set(before) - set(after_restart)))
    res.fig("keys_after_restart", "%d/%d" % (len(after_restart), len(before)))
    r = cl.redis()
    # The refusals above are in the ACL LOG: clear it, the end-of-test check is for the services' own calls.
    r.execute_command("ACL", "LOG", "RESET")
    # A wrong password: the service does not start, and says which user was refused.
    wrong = cl.secret("redis-wrong", "not-the-password")
    p = subprocess.run([cl.binary("sav-billing"), "--config", cl.config], capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL, env=dict(os.environ, SAV_BILLING_REDIS_PASSWORD=wrong))
    res.check(p.returncode == 1 and "refused the user sav-billing" in p.stderr and "WRONGPASS" in p.stderr,
              "sav-billing with a wrong Redis password: exit %d %r" % (p.returncode, p.stderr.strip()[-300:]))
    res.fig("wrong_password", p.stderr.strip().splitlines()[-1][:140] if p.stderr.strip() else None)
    res.check("not-the-password" not in p.stderr, "the password appears in the error")
    r.execute_command("ACL", "LOG", "RESET")
    leaks = [(n, s) for n in os.listdir(cl.dir) if n.endswith(".log") for s, (_, pw) in cl.redis_users.items()
             if pw in read(os.path.join(cl.dir, n)).decode("utf-8", "replace")]
    res.check(not leaks, "Redis passwords in the logs: %s" % leaks)
    return res


TESTS = [
    ("unknown_and_plain_clients", test_unknown_and_plain_clients),
    ("redis_users", test_redis_users),
    ("roles_and_actors", test_roles_and_actors),
    ("identities_and_key_files", test_identities_and_key_files),
    ("curve_off", test_curve_off),
]


if __name__ == "__main__":
    sys.exit(fixtures.standalone(TESTS, __doc__))
