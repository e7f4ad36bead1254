#!/usr/bin/python3
"""SAV checks of the deployment files (issue 9), as far as this machine can check them: no systemd runs as PID 1
here and no container engine or Kubernetes cluster is reachable, so the units are verified offline and the
others parsed and cross-checked, never started.

Usage: /usr/bin/python3 tests/system/deploy_tests.py --bin build/bin [--only NAME[,NAME...]] [--keep]

- deploy_systemd: deploy/systemd/*.service and sav.target, with the binaries and configuration paths pointed at
  this build: `systemd-analyze verify` finds nothing to say; `systemd-analyze security --offline=yes` rates every
  service's exposure at most 2.0 (OK); each service runs as the user sav (never root), restarts always, checks
  its configuration first (ExecStartPre --check-config, which passes on a valid file and names file:line on a bad
  one) and carries the hardening the issue asks for; sav.target wants all four and each is part of it.
"""

import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
SYSTEST_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, SYSTEST_DIR)
import fixtures  # noqa: E402
import harness  # noqa: E402
from fixtures import Result  # noqa: E402

REPO = os.path.dirname(os.path.dirname(SYSTEST_DIR))
SYSTEMD_DIR = os.path.join(REPO, "deploy", "systemd")
HARDENING = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
             "PrivateDevices": "yes", "CapabilityBoundingSet": "", "RestrictNamespaces": "yes",
             "MemoryDenyWriteExecute": "yes", "SystemCallArchitectures": "native"}


def read_unit(path):
    """A unit as {section: {key: [values]}} (keys may repeat)."""
    out, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line.strip("[]")
                out.setdefault(section, {})
                continue
            k, _, v = line.partition("=")
            out[section].setdefault(k.strip(), []).append(v.strip())
    return out


def test_deploy_systemd(cl):
    res = Result()
    units = sorted(f for f in os.listdir(SYSTEMD_DIR) if f.endswith((".service", ".target")))
    services = [u for u in units if u.endswith(".service")]
    res.check(services == ["sav-%s.service" % s for s in sorted(harness.SERVICES)],
              "deploy/systemd has %s, want one unit per service" % services)
    res.fig("units", len(units))
    d = os.path.join(cl.dir, "units")
    os.makedirs(d)
    for u in units:
        with open(os.path.join(SYSTEMD_DIR, u)) as f:
            text = f.read()
        text = text.replace("/usr/bin/", cl.bin_dir + "/").replace("/etc/sav/sav.conf", cl.config)
        with open(os.path.join(d, u), "w") as f:
            f.write(text)
    analyze = shutil.which("systemd-analyze")
    if not res.check(analyze, "systemd-analyze not found (Debian package systemd)"):
        return res
    v = subprocess.run([analyze, "verify", "--man=no"] + [os.path.join(d, u) for u in units], capture_output=True,
                       text=True, cwd=d)
    said = [l for l in (v.stdout + v.stderr).splitlines() if l.strip()]
    res.check(v.returncode == 0 and not said, "systemd-analyze verify: exit %d: %s" % (v.returncode, said[:5]))
    scores = {}
    for u in services:
        s = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", os.path.join(d, u)],
                           capture_output=True, text=True, cwd=d)
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", s.stdout + s.stderr)
        scores[u] = float(m.group(1)) if m else None
        res.check(m and scores[u] <= 2.0, "%s: exposure %s, want at most 2.0 (systemd-analyze security)" % (
            u, scores[u]))
    res.fig("exposure", scores)
    target = read_unit(os.path.join(SYSTEMD_DIR, "sav.target"))
    wants = " ".join(target.get("Unit", {}).get("Wants", [])).split()
    res.check(sorted(wants) == services, "sav.target wants %s, want the four services" % wants)
    for u in services:
        unit = read_unit(os.path.join(SYSTEMD_DIR, u))
        svc = unit.get("Service", {})
        one = {k: v[-1] for k, v in svc.items()}
        res.check(one.get("User") == "sav" and one.get("Group") == "sav", "%s: User %r Group %r, want sav" % (
            u, one.get("User"), one.get("Group")))
        res.check(one.get("Restart") == "always", "%s: Restart %r, want always" % (u, one.get("Restart")))
        for k, want in HARDENING.items():
            res.check(one.get(k) == want, "%s: %s=%r, want %r" % (u, k, one.get(k), want))
        res.check("sav.target" in unit.get("Unit", {}).get("PartOf", []) and
                  "sav.target" in unit.get("Install", {}).get("WantedBy", []), "%s is not part of sav.target" % u)
        name = u[len("sav-"):-len(".service")]
        pre = one.get("ExecStartPre", "")
        res.check(pre == "/usr/bin/sav-%s --check-config" % name, "%s: ExecStartPre %r" % (u, pre))
        env = dict(os.environ, SAV_CONFIG=cl.config)
        ok = subprocess.run([cl.binary("sav-" + name), "--check-config"], capture_output=True, text=True, env=env)
        res.check(ok.returncode == 0, "%s: --check-config on a valid file: exit %d %s" % (u, ok.returncode, ok.stderr))
        bad = os.path.join(cl.dir, "bad.conf")
        with open(bad, "w") as f:
            f.write("[redis]\nport = none\n")
        env["SAV_CONFIG"] = bad
        ko = subprocess.run([cl.binary("sav-" + name), "--check-config"], capture_output=True, text=True, env=env)
        res.check(ko.returncode == 1 and "%s:2:" % bad in ko.stderr, "%s: --check-config on a bad file: exit %d %r" % (
            u, ko.returncode, ko.stderr.strip()))
    return res


TESTS = [
    ("deploy_systemd", test_deploy_systemd),
]


if __name__ == "__main__":
    sys.exit(fixtures.standalone(TESTS, __doc__))
