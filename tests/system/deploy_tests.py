#!/usr/bin/python3
"""SAV checks of the deployment files (issue 9), as far as this machine can check them: no systemd runs as PID 1
here and no container engine or Kubernetes cluster is reachable, so the units are verified offline and the
container and Kubernetes files parsed and cross-checked, never started (their scripts run outside containers).

Usage: /usr/bin/python3 tests/system/deploy_tests.py --bin build/bin [--only NAME[,NAME...]] [--keep]

- deploy_systemd: deploy/systemd/*.service and sav.target, with the binaries and configuration paths pointed at
  this build: `systemd-analyze verify` finds nothing to say; `systemd-analyze security --offline=yes` rates every
  service's exposure at most 2.0 (OK); each service runs as the user sav (never root), restarts always, checks
  its configuration first (ExecStartPre --check-config, which passes on a valid file and names file:line on a bad
  one) and carries the hardening the issue asks for; sav.target wants all four and each is part of it.
- deploy_container: deploy/container's Dockerfile (stages and bases, every COPY source present and kept by
  Dockerfile.dockerignore, `make -n` with only the build stage's sources, build packages those of tools/deps.sh
  providing the Makefile's pkg-config modules and tools, a runtime package for every NEEDED library of the
  binaries, Debian 12 names by apt-cache, a non-root USER, ENTRYPOINT and HEALTHCHECK scripts it copies), the
  scripts (sh -n, shellcheck when installed, entrypoint.sh and healthcheck.sh against a fake health endpoint),
  compose.yaml cross-checked with the Dockerfile, sav.conf, redis-start.sh and common/settings.c (images,
  targets, hardening, volumes, depends_on, every SAV_* variable a setting that takes its value, endpoints = the
  compose instances, sentinels, the paths of keys and secrets in the volumes init writes), init.sh's output
  passing every instance's --check-config, and `docker compose config` (or docker-compose) when installed.
- deploy_redis_start: init.sh, redis-start.sh and healthcheck.sh run on 127.0.0.1 (three servers, three
  sentinels, the four services with compose's sav.conf): a write acknowledged by a replica, a SIGKILLed
  master failed over, the old master back as a replica of the new one through redis-start.sh.
- deploy_k8s: deploy/k8s's manifests cross-checked with sav.conf, kustomization.yaml, make-secrets.sh (run with
  a stand-in kubectl), secrets.example.yaml, the image and redis-start.sh: names, replicas and ports against
  the endpoint lists, probes on http_listen, the downward-API variables, security contexts, Secret items and
  modes, every path of sav.conf a mount or a file of the image; each pod's --check-config in a directory laid
  out as the kubelet would (0440 Secret files, install-keys.sh); `kubectl kustomize` when kubectl is installed
  (`kubectl apply --dry-run=client` is not run: it needs an API server).
"""

import collections
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

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


# ---------------------------------------------------------------- containers and Kubernetes: shared helpers

CONTAINER_DIR = os.path.join(REPO, "deploy", "container")
K8S_DIR = os.path.join(REPO, "deploy", "k8s")
DOCKERFILE = os.path.join(CONTAINER_DIR, "Dockerfile")
DOCKERIGNORE = os.path.join(CONTAINER_DIR, "Dockerfile.dockerignore")
COMPOSE = os.path.join(CONTAINER_DIR, "compose.yaml")
COMPOSE_CONF = os.path.join(CONTAINER_DIR, "sav.conf")
K8S_CONF = os.path.join(K8S_DIR, "sav.conf")
INIT_SH = os.path.join(CONTAINER_DIR, "init.sh")
REDIS_START_SH = os.path.join(CONTAINER_DIR, "redis-start.sh")
TEMPLATES_DIR = os.path.join(REPO, "services", "notification", "templates")
CATALOG = os.path.join(REPO, "deploy", "local", "catalog.json")
SANITIZER_LIBS = ("libasan", "libubsan", "liblsan", "libtsan")  # only in a SAN=1 build, never in the image
# The commands the image's entry point maps (entrypoint.sh) and the modes of redis-start.sh.
ENTRY_COMMANDS = set(harness.SERVICES) | {"savctl", "init", "install-keys", "help", "sleep"}
REDIS_MODES = {"redis", "sentinel"}


def load_yaml_all(path):
    import yaml  # python3-yaml (tools/deps.sh)
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def clean_env(extra=None):
    """This process's environment without SAV_* variables (a caller's SAV_CONFIG must not leak in), plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAV_")}
    env.update(extra or {})
    return env


def run(argv, env=None, timeout=60, **kw):
    return subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout,
                          env=clean_env(env), **kw)


def makefile_version():
    with open(os.path.join(REPO, "Makefile")) as f:
        return re.search(r"^SAV_VERSION\s*:=\s*(\S+)", f.read(), re.M).group(1)


def makefile_pkgs():
    with open(os.path.join(REPO, "Makefile")) as f:
        return re.search(r"^PKGS\s*:=\s*(.+)$", f.read(), re.M).group(1).split()


def deps_packages():
    with open(os.path.join(REPO, "tools", "deps.sh")) as f:
        return set(re.search(r'^PACKAGES="([^"]*)"', f.read(), re.M).group(1).split())


def setting_names():
    """Every (section, key) common/settings.c declares."""
    with open(os.path.join(REPO, "common", "settings.c")) as f:
        return set(re.findall(r'[A-Z]+_SETTING\("(\w+)", "(\w+)"', f.read()))


def env_setting(name, settings):
    """The SECTION.KEY an environment variable SAV_<SECTION>_<KEY> overrides, or None."""
    for sec, key in settings:
        if name == "SAV_%s_%s" % (sec.upper(), key.upper()):
            return "%s.%s" % (sec, key)
    return None


def conf_get(cl, conf, key, env=None):
    """(exit code, value) of `savctl --config conf config get key` with env."""
    r = run([cl.binary("savctl"), "--config", conf, "config", "get", key], env)
    return r.returncode, r.stdout.strip()


def check_loads(cl, res, conf):
    """Whether savctl reads conf (a syntax error, an unknown key or a bad value stops every binary)."""
    r = run([cl.binary("savctl"), "--config", conf, "config", "get", "redis.sentinels"])
    return res.check(r.returncode == 0, "%s does not load: %s" % (conf, r.stderr.strip()))


def check_config(cl, service, conf, env):
    return run([cl.binary("sav-" + service), "--config", conf, "--check-config"], env)


def tcp_endpoints(value):
    """[(host, port)] of a comma list of tcp://HOST:PORT."""
    out = []
    for item in value.split(","):
        m = re.match(r"^tcp://([^:/]+):(\d+)$", item.strip())
        out.append((m.group(1), int(m.group(2))) if m else (item.strip(), None))
    return out


def host_ports(value):
    out = []
    for item in value.split(","):
        h, _, p = item.strip().rpartition(":")
        out.append((h, int(p) if p.isdigit() else None))
    return out


def script_default(script, var):
    """The default a shell script gives ${VAR:-default}."""
    with open(script) as f:
        m = re.search(r"\$\{%s:-([^}]*)\}" % var, f.read())
    return m.group(1) if m else None


def redis_start_variables():
    """The environment variables redis-start.sh documents in its header."""
    with open(REDIS_START_SH) as f:
        header = "".join(l for l in f if l.startswith("#"))
    return set(re.findall(r"\b((?:REDIS|SENTINEL)_[A-Z_]+)\b", header))


def git_files(under):
    """The repository's tracked files under a path (relative to the root)."""
    r = subprocess.run(["git", "-C", REPO, "ls-files", "-z", "--", under], capture_output=True, text=True)
    if r.returncode == 0 and r.stdout:
        return [f for f in r.stdout.split("\0") if f]
    out = []  # no git (an exported tree): the files on disk
    full = os.path.join(REPO, under)
    if os.path.isfile(full):
        return [under]
    for d, _, files in os.walk(full):
        out.extend(os.path.relpath(os.path.join(d, f), REPO) for f in files)
    return out


def make_materials(cl, conf, d):
    """Runs deploy/container/init.sh for conf with each of its paths pointed into d (SAV_* overrides); returns the
    completed process and the overrides."""
    env = {"SAV_SECURITY_KEYS_DIR": os.path.join(d, "keys"), "SAV_SECURITY_CLIENTS": os.path.join(d, "keys", "clients"),
           "SAV_REDIS_SENTINEL_PASSWORD": "file:" + os.path.join(d, "secrets", "redis-sentinel")}
    for s in harness.SERVICES:
        env["SAV_%s_REDIS_PASSWORD" % s.upper()] = "file:" + os.path.join(d, "secrets", "redis-" + s)
    r = run([INIT_SH], dict(env, SAV_CONFIG=conf, SAVCTL=cl.binary("savctl")))
    return r, env


def check_materials(res, d, what):
    """The files init.sh makes: key pairs for the four services and admin, the clients file naming admin, a
    password per Redis user, and users.acl with each user behind the SHA-256 of its password. Returns
    {file name: content} of keys/ and secrets/."""
    keys, secrets_dir = os.path.join(d, "keys"), os.path.join(d, "secrets")
    names = list(harness.SERVICES) + ["admin"]
    for n in names:
        for ext in ("key", "pub"):
            res.check(os.path.isfile(os.path.join(keys, "%s.%s" % (n, ext))), "%s: init made no %s.%s" % (what, n, ext))
        if os.path.isfile(os.path.join(keys, n + ".key")):
            mode = os.stat(os.path.join(keys, n + ".key")).st_mode & 0o777
            res.check(mode == 0o600, "%s: %s.key has mode %03o, want 600" % (what, n, mode))
    clients = read_text(os.path.join(keys, "clients"))
    res.check(re.search(r"^\S{40} admin admin$", clients, re.M), "%s: the clients file does not authorise admin as "
              "admin: %r" % (what, clients))
    pw = {}
    for n in ["admin", "sentinel"] + ["sav-" + s for s in harness.SERVICES]:
        f = os.path.join(secrets_dir, "redis-" + (n[4:] if n.startswith("sav-") else n))
        pw[n] = read_text(f).strip()
        res.check(re.fullmatch(r"[0-9a-f]{48}", pw[n]), "%s: %s holds %r, want 48 hex digits" % (what, f, pw[n]))
        if os.path.exists(f):
            res.check(os.stat(f).st_mode & 0o077 == 0, "%s: %s may be read by others" % (what, f))
    acl = read_text(os.path.join(secrets_dir, "users.acl")).splitlines()
    users = {l.split()[1]: l for l in acl if l.startswith("user ")}
    want_users = {"default"} | {"sav-" + s for s in harness.SERVICES}
    res.check(set(users) == want_users, "%s: users.acl has users %s, want %s" % (what, sorted(users), sorted(want_users)))
    for u, line in users.items():
        p = pw["admin" if u == "default" else u]
        digest = hashlib.sha256(p.encode()).hexdigest()
        res.check(line.split()[2:4] == ["on", "#" + digest], "%s: users.acl: %s is not on behind #SHA256 of its "
                  "password: %r" % (what, u, line[:120]))
        res.check(">" not in line.split()[3], "%s: users.acl holds a clear password for %s" % (what, u))
    res.check("~* &* +@all" in users.get("default", ""), "%s: the default user lost a right (Redis 7.0 replays the "
              "AOF as the default user)" % what)
    out = {}
    for sub in (keys, secrets_dir):
        for n in sorted(os.listdir(sub)) if os.path.isdir(sub) else []:
            out[os.path.join(os.path.basename(sub), n)] = read_text(os.path.join(sub, n))
    return out


def read_text(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return ""


# ---------------------------------------------------------------- Dockerfile

def dockerfile_instructions(path):
    """[(line, INSTRUCTION, arguments)] with continuation lines joined and comments dropped."""
    out, buf, start = [], "", None
    with open(path) as f:
        for n, line in enumerate(f, 1):
            s = line.rstrip("\n")
            if s.lstrip().startswith("#") or (not buf and not s.strip()):
                continue
            start = start or n
            if s.endswith("\\"):
                buf += s[:-1] + " "
                continue
            buf += s
            word, _, rest = buf.strip().partition(" ")
            out.append((start, word.upper(), " ".join(rest.split())))
            buf, start = "", None
    return out


def dockerfile_stages(instrs):
    stages = []
    for n, ins, rest in instrs:
        if ins == "FROM":
            m = re.match(r"^(?:--platform=\S+ )?(\S+)(?: AS (\S+))?$", rest, re.I)
            stages.append({"base": m.group(1), "name": m.group(2), "line": n, "instrs": []})
        elif stages:
            stages[-1]["instrs"].append((n, ins, rest))
    return stages


def stage_copies(stage):
    """[(from stage or None, [sources], destination)] of a stage's COPY instructions (shell form)."""
    out = []
    for n, ins, rest in stage["instrs"]:
        if ins not in ("COPY", "ADD"):
            continue
        words = rest.split()
        flags = [w for w in words if w.startswith("--")]
        args = [w for w in words if not w.startswith("--")]
        src_from = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
        out.append((src_from, args[:-1], args[-1]))
    return out


def stage_image_paths(stage):
    """{path in the image: repository path} of what a stage copies from the build context."""
    out = {}
    for src_from, srcs, dest in stage_copies(stage):
        if src_from:
            continue
        for src in srcs:
            to = dest.rstrip("/") + "/" + os.path.basename(src) if len(srcs) > 1 or dest.endswith("/") else dest
            out[to] = src
    return out


def stage_packages(stage):
    pkgs = []
    for n, ins, rest in stage["instrs"]:
        if ins == "RUN":
            for m in re.finditer(r"apt-get install ([^&;]*)", rest):
                pkgs.extend(w for w in m.group(1).split() if not w.startswith("-"))
    return pkgs


def stage_value(stage, instr):
    vals = [rest for n, ins, rest in stage["instrs"] if ins == instr]
    return vals[-1] if vals else None


def exec_form(value):
    """The JSON array of an exec-form instruction argument (HEALTHCHECK ... CMD [...], ENTRYPOINT [...])."""
    if value is None:
        return None
    m = re.search(r"(\[.*\])\s*$", value)
    try:
        return json.loads(m.group(1)) if m else None
    except ValueError:
        return None


def dockerignore_patterns(path):
    pats = []
    with open(path) as f:
        for line in f:
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            neg = s.startswith("!")
            s = os.path.normpath(s[1:].strip() if neg else s).lstrip("/")
            rx, i = "", 0
            while i < len(s):
                if s.startswith("**/", i):
                    rx, i = rx + "(?:.*/)?", i + 3
                elif s.startswith("**", i):
                    rx, i = rx + ".*", i + 2
                elif s[i] == "*":
                    rx, i = rx + "[^/]*", i + 1
                elif s[i] == "?":
                    rx, i = rx + "[^/]", i + 1
                else:
                    rx, i = rx + re.escape(s[i]), i + 1
            pats.append((neg, re.compile("^" + rx + "$")))
    return pats


def dockerignored(pats, rel):
    """Whether the build context leaves rel out: the last pattern that matches it or one of its parents decides
    (moby's patternmatcher)."""
    parts = rel.split("/")
    candidates = ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]
    excluded = False
    for neg, rx in pats:
        if any(rx.match(c) for c in candidates):
            excluded = not neg
    return excluded


def lib_package(lib):
    """The Debian package that holds a shared library known to ldconfig, or None."""
    r = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True)
    m = re.search(r"^\s*%s \(libc6,x86-64\) => (\S+)$" % re.escape(lib), r.stdout, re.M) or \
        re.search(r"^\s*%s \([^)]*\) => (\S+)$" % re.escape(lib), r.stdout, re.M)
    if not m:
        return None
    candidates = [m.group(1), os.path.realpath(m.group(1))]
    candidates += ["/usr" + c for c in candidates if not c.startswith("/usr/")]
    for c in candidates:
        d = subprocess.run(["dpkg-query", "-S", c], capture_output=True, text=True)
        if d.returncode == 0:
            return d.stdout.split(":")[0].strip()
    return None


def path_package(path):
    for c in (path, os.path.realpath(path)):
        d = subprocess.run(["dpkg-query", "-S", c], capture_output=True, text=True)
        if d.returncode == 0:
            return d.stdout.split(":")[0].strip()
    return None


def check_dockerfile(cl, res):
    """The Dockerfile's stages, packages, copies, user, health check and entry point. Returns its stages."""
    instrs = dockerfile_instructions(DOCKERFILE)
    stages = dockerfile_stages(instrs)
    by_name = {s["name"]: s for s in stages}
    res.fig("docker_stages", [s["name"] for s in stages])
    if not res.check(set(by_name) == {"build", "redis", "runtime"}, "Dockerfile stages %s, want build, redis and "
                     "runtime" % list(by_name)):
        return by_name
    res.check(stages[-1]["name"] == "runtime", "the last stage (docker build's default target) is %s, want runtime"
              % stages[-1]["name"])
    res.check(by_name["build"]["base"] in ("debian:12", "debian:bookworm"), "build stage FROM %s, want debian:12"
              % by_name["build"]["base"])
    for n in ("redis", "runtime"):
        res.check(by_name[n]["base"] in ("debian:12-slim", "debian:bookworm-slim"), "%s stage FROM %s, want "
                  "debian:12-slim" % (n, by_name[n]["base"]))
    version = makefile_version()
    res.check("sav:%s" % version in read_text(DOCKERFILE), "the Dockerfile's build command does not tag sav:%s "
              "(SAV_VERSION of the Makefile)" % version)

    # Every source copied from the build context exists, is tracked, and is not left out by the dockerignore.
    pats = dockerignore_patterns(DOCKERIGNORE)
    copied = 0
    for st in stages:
        for src_from, srcs, dest in stage_copies(st):
            if src_from:
                res.check(src_from in [s["name"] for s in stages[:stages.index(st)]],
                          "%s: COPY --from=%s names no earlier stage" % (st["name"], src_from))
                continue
            for src in srcs:
                copied += 1
                full = os.path.join(REPO, src)
                if not res.check(os.path.exists(full), "%s: COPY %s: no such file in the repository" % (st["name"], src)):
                    continue
                files = git_files(src)
                res.check(files, "%s: COPY %s: nothing tracked by git there" % (st["name"], src))
                left_out = [f for f in files if dockerignored(pats, f)]
                res.check(not left_out, "%s: COPY %s: Dockerfile.dockerignore leaves out %s" % (
                    st["name"], src, left_out[:5]))
    res.fig("docker_copies", copied)
    # ... and the context leaves out what must never be in an image.
    for secret_like in ("var/keys/admin.key", "build/bin/savctl", "deploy/local/sav.conf", ".git/config"):
        res.check(dockerignored(pats, secret_like), "Dockerfile.dockerignore keeps %s in the context" % secret_like)

    # The build stage: the build packages of tools/deps.sh, enough for the Makefile's pkg-config modules and
    # tools, and a make of exactly the binaries the runtime stage copies.
    build_pkgs = set(stage_packages(by_name["build"]))
    deps = deps_packages()
    res.check(build_pkgs - {"libc6-dev"} <= deps, "build stage installs %s, not in tools/deps.sh PACKAGES" % sorted(
        build_pkgs - {"libc6-dev"} - deps))
    need = {}
    for mod in makefile_pkgs():
        pc = subprocess.run(["pkg-config", "--variable=pcfiledir", mod], capture_output=True, text=True).stdout.strip()
        need[mod] = path_package(os.path.join(pc, mod + ".pc")) if pc else None
    for tool in ("protoc-c", "make", "gcc"):
        p = shutil.which(tool)
        need[tool] = path_package(p) if p else None
    for what, pkg in need.items():
        res.check(pkg and pkg in build_pkgs, "build stage: %s comes from %s here, which the build stage does not "
                  "install (%s)" % (what, pkg, sorted(build_pkgs)))
    res.fig("build_packages", len(build_pkgs))
    make_line = " ".join(rest for n, ins, rest in by_name["build"]["instrs"] if ins == "RUN" and "make" in rest)
    made = set(re.findall(r"build/bin/([\w.-]+)", make_line))
    runtime_bins = set()
    for src_from, srcs, dest in stage_copies(by_name["runtime"]):
        if src_from == "build":
            for s in srcs:
                runtime_bins.add(os.path.basename(s))
                res.check(s.startswith("/src/build/bin/") and os.path.basename(s) in made,
                          "runtime copies %s, which the build stage does not make" % s)
            res.check(dest.rstrip("/") == "/usr/bin", "runtime: binaries go to %s, want /usr/bin (as the systemd "
                      "units)" % dest)
    want_bins = {"sav-" + s for s in harness.SERVICES} | {"savctl"}
    res.check(runtime_bins == want_bins, "runtime copies %s, want %s" % (sorted(runtime_bins), sorted(want_bins)))
    # The build stage's sources suffice: make -n of its targets in a tree holding only what it copies.
    tree = os.path.join(cl.dir, "docker-build-context")
    for src_from, srcs, dest in stage_copies(by_name["build"]):
        for src in srcs:
            for f in git_files(src):
                os.makedirs(os.path.dirname(os.path.join(tree, f)) or tree, exist_ok=True)
                shutil.copy2(os.path.join(REPO, f), os.path.join(tree, f))
    targets = ["build/bin/" + b for b in sorted(made)]
    dry = run(["make", "-n", "-C", tree] + targets)
    res.check(dry.returncode == 0, "make -n %s with only the build stage's sources: exit %d %s" % (
        " ".join(targets), dry.returncode, dry.stderr.strip()[-300:]))

    # The runtime stage: a package for every shared library the binaries need (readelf NEEDED), no -dev.
    runtime_pkgs = set(stage_packages(by_name["runtime"]))
    needed = set()
    for b in sorted(want_bins):
        out = run(["readelf", "-d", cl.binary(b)]).stdout
        needed |= set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out))
    needed = {l for l in needed if not l.startswith(SANITIZER_LIBS)}
    lib_pkgs = {}
    for lib in sorted(needed):
        pkg = lib_package(lib)
        lib_pkgs[lib] = pkg
        res.check(pkg in runtime_pkgs or pkg == "libc6", "runtime: the binaries need %s (package %s), which the "
                  "runtime stage does not install" % (lib, pkg))
    res.fig("needed_libs", len(needed))
    res.check(not [p for p in runtime_pkgs if p.endswith("-dev")], "runtime installs -dev packages: %s" % sorted(
        runtime_pkgs))
    for p in ("tzdata", "curl", "ca-certificates"):
        res.check(p in runtime_pkgs, "runtime does not install %s" % p)
    # Debian 12's package names (this machine's apt lists, when it is Debian 12).
    all_pkgs = sorted(build_pkgs | runtime_pkgs | set(stage_packages(by_name["redis"])))
    debian = read_text("/etc/debian_version").strip()
    if shutil.which("apt-cache") and debian.startswith("12"):
        shown = run(["apt-cache", "show", "--no-all-versions"] + all_pkgs).stdout
        missing = sorted(set(all_pkgs) - set(re.findall(r"^Package: (\S+)$", shown, re.M)))
        res.check(not missing, "not Debian 12 package names (apt-cache show): %s" % missing)
        res.fig("apt_cache_checked", len(all_pkgs))
    else:
        res.fig("apt_cache_checked", "skipped: not Debian 12 or no apt-cache (Debian %s)" % (debian or "?"))

    # Never root; a health check and an entry point that exist in the image.
    for n in ("redis", "runtime"):
        st = by_name[n]
        user = stage_value(st, "USER") or ""
        uid = re.match(r"^(\d+)(?::(\d+))?$", user)
        res.check(uid and int(uid.group(1)) != 0, "%s: USER %r, want a numeric non-root uid (runAsNonRoot checks it)"
                  % (n, user))
        made_uid = re.search(r"useradd [^&]*--uid (\d+)", " ".join(r for _, i, r in st["instrs"] if i == "RUN"))
        res.check(uid and made_uid and made_uid.group(1) == uid.group(1), "%s: USER %s is not the uid useradd makes "
                  "(%s)" % (n, user, made_uid and made_uid.group(1)))
        st["uid"] = int(uid.group(1)) if uid else None
        paths = stage_image_paths(st)
        for instr in ("ENTRYPOINT", "HEALTHCHECK"):
            cmd = exec_form(stage_value(st, instr))
            if res.check(cmd, "%s: no exec-form %s" % (n, instr)):
                res.check(cmd[0] in paths and os.access(os.path.join(REPO, paths[cmd[0]]), os.X_OK),
                          "%s: %s runs %s, which the stage does not copy from an executable file" % (n, instr, cmd[0]))
        st["paths"] = paths
        st["entrypoint"] = exec_form(stage_value(st, "ENTRYPOINT"))
    env = stage_value(by_name["runtime"], "ENV") or ""
    m = re.search(r"SAV_CONFIG=(\S+)", env)
    by_name["runtime"]["sav_config"] = m.group(1) if m else None
    res.check(m and by_name["runtime"]["sav_config"] in by_name["runtime"]["paths"],
              "runtime: ENV SAV_CONFIG %s is not a file the image copies" % (m and m.group(1)))
    return by_name


def check_scripts(cl, res):
    """deploy/container's shell scripts: executable, sh -n, shellcheck when installed; the entry point's commands."""
    scripts = sorted(glob.glob(os.path.join(CONTAINER_DIR, "*.sh")) + glob.glob(os.path.join(K8S_DIR, "*.sh")))
    for s in scripts:
        res.check(os.access(s, os.X_OK), "%s is not executable" % s)
        r = run(["sh", "-n", s])
        res.check(r.returncode == 0, "sh -n %s: %s" % (s, r.stderr.strip()))
    if shutil.which("shellcheck"):
        r = run(["shellcheck", "-s", "sh"] + scripts)
        res.check(r.returncode == 0, "shellcheck: %s" % r.stdout.strip()[:1500])
        res.fig("shellcheck", len(scripts))
    else:
        res.fig("shellcheck", "skipped: not installed")
    path = {"PATH": cl.bin_dir + ":" + os.environ.get("PATH", "/usr/bin:/bin")}
    entry = os.path.join(CONTAINER_DIR, "entrypoint.sh")
    for s in list(harness.SERVICES) + ["savctl"]:
        r = run([entry, s, "--version"], path)
        want = ("sav-%s " % s if s != "savctl" else "savctl ") + makefile_version()
        res.check(r.returncode == 0 and want in r.stdout, "entrypoint.sh %s --version: exit %d %r, want %r" % (
            s, r.returncode, (r.stdout + r.stderr).strip(), want))
    r = run([entry, "help"], path)
    res.check(r.returncode == 0 and "intake | diagnostics | billing | notification" in r.stdout,
              "entrypoint.sh help: exit %d %r" % (r.returncode, r.stdout[:200]))
    r = run([entry, "sh", "-c", "exit 3"], path)
    res.check(r.returncode == 3, "entrypoint.sh runs another command as given: exit %d, want 3" % r.returncode)


class FakeHealth:
    """An HTTP server on 127.0.0.1 answering each path with the status of a dict, recording the paths asked."""

    def __init__(self, statuses):
        import http.server
        import threading
        outer = self
        self.statuses, self.asked = statuses, []

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.asked.append(self.path)
                self.send_response(outer.statuses.get(self.path, 404))
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *a):
                pass
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def check_healthcheck(cl, res, conf):
    """healthcheck.sh: reads SERVICE.http_listen from the configuration (0.0.0.0 asked on 127.0.0.1), exit 0 on
    200 from /health/ready (/health/live with --live), non-zero on 503 or nobody listening."""
    script = os.path.join(CONTAINER_DIR, "healthcheck.sh")
    if not shutil.which("curl"):
        res.fig("healthcheck_script", "skipped: no curl here")
        return
    fake = FakeHealth({"/health/ready": 200, "/health/live": 200})
    try:
        base = {"PATH": cl.bin_dir + ":" + os.environ.get("PATH", "/usr/bin:/bin"), "SAV_CONFIG": conf}
        outcomes = []
        for s in harness.SERVICES:
            env = dict(base, **{"SAV_%s_HTTP_LISTEN" % s.upper(): "0.0.0.0:%d" % fake.port})
            fake.statuses["/health/ready"] = 200
            ok = run([script, s], env).returncode
            live = run([script, "--live", s], env).returncode
            fake.statuses["/health/ready"] = 503
            ko = run([script, s], env).returncode
            outcomes.append((ok, live, ko))
            res.check(ok == 0 and live == 0 and ko != 0, "healthcheck.sh %s: exit %d on 200, %d --live, %d on 503, "
                      "want 0, 0, non-zero" % (s, ok, live, ko))
        res.check(fake.asked.count("/health/live") == len(harness.SERVICES) and
                  fake.asked.count("/health/ready") == 2 * len(harness.SERVICES),
                  "healthcheck.sh asked %s" % fake.asked[:12])
        # Its default service is PID 1's: here not a SAV service (this is no container), which it says.
        r = run([script], base)
        res.check(r.returncode == 0 and "no SAV service" in r.stdout, "healthcheck.sh without a service outside a "
                  "container: exit %d %r" % (r.returncode, r.stdout.strip()))
        res.fig("healthcheck_script", "%d services, 200/503/live" % len(outcomes))
    finally:
        fake.close()
    env = dict(base, SAV_INTAKE_HTTP_LISTEN="127.0.0.1:%d" % harness.free_ports(1)[0])
    r = run([script, "intake"], env)
    res.check(r.returncode != 0, "healthcheck.sh with nobody listening: exit %d, want non-zero" % r.returncode)


# ---------------------------------------------------------------- compose

def compose_mounts(svc):
    """[(kind, source, target, read_only)] of a compose service's volumes (short or long syntax)."""
    out = []
    for v in svc.get("volumes", []) or []:
        if isinstance(v, dict):
            src, dst, ro = v.get("source"), v.get("target"), bool(v.get("read_only"))
            kind = v.get("type", "volume")
        else:
            parts = v.split(":")
            src, dst = parts[0], parts[1] if len(parts) > 1 else parts[0]
            ro = len(parts) > 2 and "ro" in parts[2].split(",")
            kind = "bind" if src.startswith((".", "/", "~")) else "volume"
        out.append((kind, src, dst, ro))
    return out


def compose_env(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def compose_command(svc):
    c = svc.get("command")
    return c.split() if isinstance(c, str) else list(c or [])


def mount_for(mounts, path):
    """The mount (longest target) that holds path in a container, or None."""
    best = None
    for m in mounts:
        t = m[2].rstrip("/")
        if path == t or path.startswith(t + "/"):
            if not best or len(t) > len(best[2]):
                best = m
    return best


def check_env_settings(cl, res, conf, env, what, settings):
    """Every SAV_* variable of env maps to a setting of common/settings.c, and savctl config get, with it set,
    prints its value (the override applies). Returns how many were checked."""
    n = 0
    for k, v in env.items():
        if not k.startswith("SAV_") or k == "SAV_CONFIG":
            continue
        n += 1
        key = env_setting(k, settings)
        if not res.check(key, "%s: %s is no SAV_<SECTION>_<KEY> of common/settings.c" % (what, k)):
            continue
        rc, got = conf_get(cl, conf, key, {k: v})
        res.check(rc == 0 and got == v, "%s: %s=%s: savctl config get %s says %r (exit %d)" % (
            what, k, v, key, got, rc))
    return n


def test_deploy_container(cl):
    res = Result()
    try:
        import yaml  # noqa: F401
    except ImportError:
        res.check(False, "python3-yaml is not installed (tools/deps.sh installs it)")
        return res
    stages = check_dockerfile(cl, res)
    if res.problems and "runtime" not in stages:
        return res
    check_scripts(cl, res)
    rc = read_text(os.path.join(CONTAINER_DIR, "redis.conf"))
    res.check("# Generated by CONFIG REWRITE" not in rc.splitlines() and not re.search(r"^\s*masterauth", rc, re.M),
              "deploy/container/redis.conf holds a CONFIG REWRITE section or masterauth (a server started on it?)")
    if not check_loads(cl, res, COMPOSE_CONF):
        return res
    settings = setting_names()
    version = makefile_version()
    docs = load_yaml_all(COMPOSE)
    if not res.check(len(docs) == 1 and isinstance(docs[0].get("services"), dict), "compose.yaml: want one document "
                     "with services"):
        return res
    doc = docs[0]
    services = doc["services"]
    res.fig("compose_services", len(services))
    volumes = set((doc.get("volumes") or {}).keys())
    used_volumes = set()
    images = {}  # image -> target
    sav_image, redis_image = "sav:%s" % version, "sav-redis:%s" % version
    conf_target = stages["runtime"].get("sav_config")

    for name, svc in services.items():
        what = "compose %s" % name
        # Image and build: a stage of the Dockerfile, one target per image, tagged with SAV_VERSION.
        image = svc.get("image")
        res.check(image in (sav_image, redis_image), "%s: image %r, want %s or %s" % (what, image, sav_image,
                                                                                      redis_image))
        build = svc.get("build")
        if build is not None:
            ctx = os.path.normpath(os.path.join(CONTAINER_DIR, build.get("context", ".")))
            res.check(ctx == REPO, "%s: build context %s, want the repository root" % (what, ctx))
            dockerfile = os.path.join(ctx, build.get("dockerfile", "Dockerfile"))
            res.check(os.path.samefile(dockerfile, DOCKERFILE) if os.path.exists(dockerfile) else False,
                      "%s: build dockerfile %s is not deploy/container/Dockerfile" % (what, dockerfile))
            target = build.get("target")
            res.check(target in stages, "%s: build target %r is no stage of the Dockerfile" % (what, target))
            if images.setdefault(image, target) != target:
                res.check(False, "%s: image %s built from targets %s and %s" % (what, image, images[image], target))
        stage = stages.get("runtime" if image == sav_image else "redis", {})
        # Hardening: the image's non-root user, read-only root, no capability, no new privileges.
        user = str(svc.get("user", ""))
        res.check(re.match(r"^\d+(:\d+)?$", user) and int(user.split(":")[0]) == stage.get("uid") != 0,
                  "%s: user %r, want the image's non-root uid %s" % (what, user, stage.get("uid")))
        res.check(svc.get("read_only") is True, "%s: read_only is not true" % what)
        res.check("ALL" in (svc.get("cap_drop") or []), "%s: cap_drop lacks ALL" % what)
        res.check("no-new-privileges:true" in (svc.get("security_opt") or []), "%s: no no-new-privileges" % what)
        # Volumes declared, bind sources present.
        mounts = compose_mounts(svc)
        for kind, src, dst, ro in mounts:
            if kind == "volume":
                used_volumes.add(src)
                res.check(src in volumes, "%s: volume %s is not declared" % (what, src))
            else:
                res.check(os.path.exists(os.path.normpath(os.path.join(CONTAINER_DIR, src))),
                          "%s: bind mount source %s does not exist" % (what, src))
        # depends_on: existing services, valid conditions that can be met.
        deps = svc.get("depends_on") or {}
        deps = {d: {"condition": "service_started"} for d in deps} if isinstance(deps, list) else deps
        for dep, spec in deps.items():
            if not res.check(dep in services, "%s: depends on %s, no such service" % (what, dep)):
                continue
            cond = (spec or {}).get("condition", "service_started")
            target = services[dep]
            if cond == "service_healthy":
                hc = target.get("healthcheck") or {}
                res.check(not hc.get("disable") and (hc.get("test") or stage_value(
                    stages.get("runtime" if target.get("image") == sav_image else "redis", {"instrs": []}),
                    "HEALTHCHECK")), "%s: waits for %s to be healthy, which has no health check" % (what, dep))
            elif cond == "service_completed_successfully":
                res.check(str(target.get("restart", "no")) == "no", "%s: waits for %s to complete, which restarts"
                          % (what, dep))
            else:
                res.check(cond == "service_started", "%s: depends_on %s: unknown condition %s" % (what, dep, cond))
        # The command is one the image's entry point (or redis-start.sh) knows; the health check names it.
        cmd = compose_command(svc)
        entry = svc.get("entrypoint") or stage.get("entrypoint") or []
        entry = entry.split() if isinstance(entry, str) else entry
        first = (list(entry[1:]) + cmd)[:1]
        if image == sav_image:
            res.check(first and first[0] in ENTRY_COMMANDS, "%s: runs %s, which entrypoint.sh does not map" % (
                what, entry + cmd))
        else:
            res.check(first and first[0] in REDIS_MODES, "%s: runs %s, not redis or sentinel" % (what, cmd))
        hc = (svc.get("healthcheck") or {}).get("test")
        if cmd[:1] and cmd[0] in harness.SERVICES + tuple(REDIS_MODES):
            res.check(hc and hc[0] == "CMD" and hc[1] in stage.get("paths", {}) and cmd[0] in hc[2:],
                      "%s: health check %s does not run the image's check for %s" % (what, hc, cmd[0]))
        svc["_mounts"], svc["_cmd"], svc["_env"] = mounts, cmd, compose_env(svc)
        # The SAV containers read the compose sav.conf where the image's SAV_CONFIG says.
        if image == sav_image and conf_target:
            m = mount_for(mounts, conf_target)
            res.check(m and m[0] == "bind" and os.path.normpath(os.path.join(CONTAINER_DIR, m[1])) == COMPOSE_CONF
                      and m[2] == conf_target, "%s: %s is not deploy/container/sav.conf" % (what, conf_target))
    res.check(used_volumes == volumes, "declared volumes %s, used %s" % (sorted(volumes), sorted(used_volumes)))
    res.check(stages["runtime"]["paths"].get(conf_target) == "deploy/container/sav.conf",
              "the image's %s is not deploy/container/sav.conf" % conf_target)
    for top in ("secrets", "configs"):
        used = {x if isinstance(x, str) else x.get("source") for svc in services.values() for x in svc.get(top, [])}
        declared = set((doc.get(top) or {}).keys())
        res.check(used <= declared, "compose %s used but not declared: %s" % (top, sorted(used - declared)))
        for k, v in (doc.get(top) or {}).items():
            res.check(os.path.exists(os.path.join(CONTAINER_DIR, v.get("file", ""))), "compose %s %s: file %s "
                      "missing" % (top, k, v.get("file")))

    # Every SAV_* variable is a setting; every REDIS_* one is documented by redis-start.sh.
    n_env = 0
    for name, svc in services.items():
        n_env += check_env_settings(cl, res, COMPOSE_CONF, svc["_env"], "compose %s" % name, settings)
        if svc.get("image") == redis_image:
            unknown = [k for k in svc["_env"] if k not in redis_start_variables()]
            res.check(not unknown, "compose %s: %s unknown to redis-start.sh" % (name, unknown))
    res.fig("env_checked", n_env)

    # Endpoints: the compose services running each SAV service, on one port; distinct instance names.
    get = lambda key, env=None: conf_get(cl, COMPOSE_CONF, key, env)[1]  # noqa: E731
    instances = {}
    for s in harness.SERVICES:
        names = sorted(n for n, svc in services.items() if svc["_cmd"][:1] == [s])
        instances[s] = names
        eps = tcp_endpoints(get(s + ".endpoint"))
        res.check(sorted(h for h, p in eps) == names, "%s.endpoint hosts %s, want the compose services running %s: "
                  "%s" % (s, [h for h, p in eps], s, names))
        res.check(len({p for h, p in eps}) == 1 and None not in {p for h, p in eps}, "%s.endpoint ports %s" % (
            s, [p for h, p in eps]))
        inst = [services[n]["_env"].get("SAV_SERVICE_INSTANCE", get("service.instance")) for n in names]
        res.check(len(set(inst)) == len(inst), "%s: instances share a service.instance: %s" % (s, inst))
        listen = get(s + ".http_listen")
        res.check(listen != "off" and listen.startswith("0.0.0.0:"), "%s.http_listen %r: the health check and "
                  "metrics need it on the container's address" % (s, listen))
    res.fig("instances", {s: len(v) for s, v in instances.items()})

    # Redis: the sentinels of sav.conf are the compose sentinels; every server and sentinel agrees.
    servers = sorted(n for n, svc in services.items() if svc.get("image") == redis_image and svc["_cmd"] == ["redis"])
    sentinels = sorted(n for n, svc in services.items() if svc.get("image") == redis_image
                       and svc["_cmd"] == ["sentinel"])
    sport = int(script_default(REDIS_START_SH, "SENTINEL_PORT"))
    rport = int(script_default(REDIS_START_SH, "REDIS_PORT"))
    conf_sentinels = get("redis.sentinels")
    res.check(sorted(host_ports(conf_sentinels)) == sorted((n, sport) for n in sentinels),
              "redis.sentinels %s, want the compose sentinels %s on %d" % (conf_sentinels, sentinels, sport))
    for n in servers + sentinels:
        e = services[n]["_env"]
        res.check(sorted(host_ports(e.get("REDIS_SENTINELS", ""))) == sorted(host_ports(conf_sentinels)),
                  "compose %s: REDIS_SENTINELS %r is not redis.sentinels %r" % (n, e.get("REDIS_SENTINELS"),
                                                                                conf_sentinels))
        res.check(e.get("REDIS_MASTER_NAME", script_default(REDIS_START_SH, "REDIS_MASTER_NAME")) ==
                  get("redis.master_name"), "compose %s: master name is not redis.master_name" % n)
        res.check(e.get("REDIS_ANNOUNCE_HOST") == n, "compose %s: REDIS_ANNOUNCE_HOST %r, want its name" % (
            n, e.get("REDIS_ANNOUNCE_HOST")))
        initial = e.get("REDIS_INITIAL_MASTER", "").split(":")
        res.check(initial[0] in servers and int((initial + [str(rport)])[1]) == int(
            services.get(initial[0], {}).get("_env", {}).get("REDIS_PORT", rport)), "compose %s: REDIS_INITIAL_MASTER "
                  "%r is no server's name and port" % (n, e.get("REDIS_INITIAL_MASTER")))
        data = e.get("REDIS_DATA_DIR", script_default(REDIS_START_SH, "REDIS_DATA_DIR"))
        m = mount_for(services[n]["_mounts"], data)
        res.check(m and m[0] == "volume" and not m[3] and m[2] == data, "compose %s: %s is no writable volume" % (
            n, data))
        services[n]["_data"] = m and m[1]
    datas = [services[n]["_data"] for n in servers + sentinels]
    res.check(len(set(datas)) == len(datas), "Redis data volumes shared: %s" % datas)
    res.check(len(servers) == 3 and len(sentinels) == 3, "want 3 Redis servers and 3 sentinels, have %s and %s" % (
        servers, sentinels))
    res.check(int(get("redis.wait_replicas")) <= len(servers) - 1, "redis.wait_replicas %s with %d servers" % (
        get("redis.wait_replicas"), len(servers)))
    res.fig("redis", "%d servers, %d sentinels" % (len(servers), len(sentinels)))

    # Paths: the keys, the clients file and every secret file lie in the volumes init writes them to, mounted
    # in each container that reads them; templates and catalog are in the image.
    init = services.get("init", {})
    res.check(init.get("_cmd") == ["init"], "compose has no init service running init")
    sentinel_file = get("redis.sentinel_password")[len("file:"):]
    secret_dir = os.path.dirname(sentinel_file)
    wants = {"keys": get("security.keys_dir"), "clients": get("security.clients"), "sentinel": sentinel_file}
    for s in harness.SERVICES:
        wants[s] = get(s + ".redis_password")[len("file:"):]
    init_volume = {}
    for k, path in wants.items():
        m = mount_for(init.get("_mounts", []), path)
        res.check(m and m[0] == "volume" and not m[3], "compose init: %s (%s) is in no writable volume" % (k, path))
        init_volume[k] = m and m[1]
    for n, svc in services.items():
        if svc["_cmd"][:1] and svc["_cmd"][0] in harness.SERVICES:
            s = svc["_cmd"][0]
            for k in ("keys", "clients", "sentinel", s):
                m = mount_for(svc["_mounts"], wants[k])
                res.check(m and m[1] == init_volume[k], "compose %s: %s (%s) is not in the volume init writes (%s)"
                          % (n, k, wants[k], init_volume[k]))
                if k != "clients":
                    res.check(m and m[3], "compose %s: %s is mounted writable" % (n, wants[k]))
    for n in servers + sentinels:
        d = services[n]["_env"].get("REDIS_SECRETS_DIR", script_default(REDIS_START_SH, "REDIS_SECRETS_DIR"))
        m = mount_for(services[n]["_mounts"], d)
        res.check(m and m[1] == init_volume["sentinel"] and m[2] == secret_dir == d, "compose %s: %s is not init's "
                  "directory of redis-sentinel, redis-admin and users.acl (%s)" % (n, d, secret_dir))
    for key, path in (("notification.templates", get("notification.templates")), ("catalog.path",
                                                                                   get("catalog.path"))):
        res.check(path in stages["runtime"]["paths"], "%s %s is not in the image" % (key, path))

    # What init makes suffices: every instance passes --check-config with it (paths pointed at it here).
    d = os.path.join(cl.dir, "compose-materials")
    r, overrides = make_materials(cl, COMPOSE_CONF, d)
    if res.check(r.returncode == 0, "init.sh: exit %d %s%s" % (r.returncode, r.stdout, r.stderr)):
        first = check_materials(res, d, "init.sh")
        r2, _ = make_materials(cl, COMPOSE_CONF, d)
        second = check_materials(res, d, "init.sh again")
        res.check(r2.returncode == 0 and first == second, "init.sh again changed %s" % sorted(
            k for k in set(first) | set(second) if first.get(k) != second.get(k)))
    overrides.update(SAV_NOTIFICATION_TEMPLATES=TEMPLATES_DIR, SAV_CATALOG_PATH=CATALOG)
    valid = 0
    for s in harness.SERVICES:
        for n in instances[s]:
            c = check_config(cl, s, COMPOSE_CONF, dict(services[n]["_env"], **overrides))
            valid += res.check(c.returncode == 0, "compose %s: sav-%s --check-config: exit %d %s%s" % (
                n, s, c.returncode, c.stdout, c.stderr))
    res.fig("check_config_ok", valid)
    # ... and one that is not given its secrets fails it (the check above could not pass by accident).
    c = check_config(cl, "billing", COMPOSE_CONF, dict(overrides, SAV_BILLING_REDIS_PASSWORD="file:" + os.path.join(
        d, "absent")))
    res.check(c.returncode == 1 and "absent" in c.stderr, "--check-config with a missing password file: exit %d %r"
              % (c.returncode, c.stderr.strip()))

    check_healthcheck(cl, res, COMPOSE_CONF)

    # The engine's own validation, when one is here (offline: `config` only parses and resolves).
    engine = None
    if shutil.which("docker") and run(["docker", "compose", "version"], timeout=20).returncode == 0:
        engine = ["docker", "compose"]
    elif shutil.which("docker-compose"):
        engine = ["docker-compose"]
    if engine:
        r = run(engine + ["-f", COMPOSE, "config", "-q"], {"HOME": cl.dir}, timeout=60)
        res.check(r.returncode == 0, "%s config: exit %d %s" % (" ".join(engine), r.returncode, r.stderr.strip()))
        res.fig("compose_config", " ".join(engine))
    else:
        res.fig("compose_config", "skipped: neither docker compose nor docker-compose")
    res.fig("docker_build", "not run: no container engine daemon here")
    return res


# ---------------------------------------------------------------- Redis set scripts, run on 127.0.0.1

def test_deploy_redis_start(cl):
    """deploy/container's init.sh, redis-start.sh and healthcheck.sh run for real on 127.0.0.1 (not in
    containers): three servers and three sentinels start as the containers would, the four services find the
    master through them with compose's sav.conf and init's secrets, then the master is SIGKILLed, the sentinels
    fail over, and the old master started again by redis-start.sh comes back as a replica of the new one."""
    res = Result()
    d = os.path.join(cl.dir, "materials")
    r, overrides = make_materials(cl, COMPOSE_CONF, d)
    if not res.check(r.returncode == 0, "init.sh: exit %d %s%s" % (r.returncode, r.stdout, r.stderr)):
        return res
    secrets_dir = os.path.join(d, "secrets")
    # A copy of redis.conf: Sentinel's CONFIG REWRITE after a role change rewrites the file a server was started
    # with (in the image it is read-only and the rewrite fails, harmlessly).
    redis_conf = os.path.join(cl.dir, "redis.conf")
    shutil.copy(os.path.join(CONTAINER_DIR, "redis.conf"), redis_conf)
    admin = read_text(os.path.join(secrets_dir, "redis-admin")).strip()
    spw = read_text(os.path.join(secrets_dir, "redis-sentinel")).strip()
    ports = harness.free_ports(6)
    rports, sports = ports[:3], ports[3:]
    sentinel_list = ",".join("127.0.0.1:%d" % p for p in sports)
    procs = {}

    def env_for(port, mode):
        e = {"REDIS_ANNOUNCE_HOST": "127.0.0.1", "REDIS_INITIAL_MASTER": "127.0.0.1:%d" % rports[0],
             "REDIS_SENTINELS": sentinel_list, "REDIS_BIND": "127.0.0.1", "REDIS_SECRETS_DIR": secrets_dir,
             "REDIS_DATA_DIR": os.path.join(cl.dir, "%s-%d" % (mode, port)),
             "REDIS_CONF": redis_conf,
             "SENTINEL_DOWN_AFTER_MS": "1000", "SENTINEL_FAILOVER_TIMEOUT_MS": "10000"}
        e["REDIS_PORT" if mode == "redis" else "SENTINEL_PORT"] = str(port)
        os.makedirs(e["REDIS_DATA_DIR"], mode=0o700, exist_ok=True)
        return e

    def start(port, mode):
        procs[port] = cl._spawn(["/bin/sh", REDIS_START_SH, mode], "%s-%d.log" % (mode, port), env_for(port, mode))

    def client(port, password):
        return redis_mod.Redis(port=port, password=password, socket_timeout=2, decode_responses=True)

    def role(port):
        try:
            return client(port, admin).execute_command("ROLE")
        except (redis_mod.exceptions.RedisError, OSError):
            return None

    def master_port():
        for p in sports:
            try:
                return int(client(p, spw).execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "sav")[1])
            except (redis_mod.exceptions.RedisError, OSError, TypeError):
                continue
        return None

    def sentinels_ready():
        try:
            for p in sports:
                m = dict(zip(*[iter(client(p, spw).execute_command("SENTINEL", "MASTER", "sav"))] * 2))
                if int(m["num-slaves"]) != 2 or int(m["num-other-sentinels"]) != 2:
                    return False
            return True
        except (redis_mod.exceptions.RedisError, OSError, KeyError, ValueError):
            return False

    import redis as redis_mod
    saved_env = dict(os.environ)
    saved_config = cl.config
    try:
        for p in rports:
            start(p, "redis")
        res.check(harness.wait_until(lambda: all(role(p) for p in rports), 15, 0.1), "the servers did not answer")
        roles = {p: (role(p) or ["?"])[0] for p in rports}
        res.check(roles == {rports[0]: "master", rports[1]: "slave", rports[2]: "slave"}, "first start: roles %s, "
                  "want %d master and the others replicas" % (roles, rports[0]))
        for p in sports:
            start(p, "sentinel")
        t0 = time.monotonic()
        if not res.check(harness.wait_until(sentinels_ready, 40, 0.2), "the sentinels did not see 2 replicas and "
                         "each other within 40 s"):
            return res
        res.fig("sentinels_ready_s", round(time.monotonic() - t0, 1))
        for p in sports:
            conf = read_text(os.path.join(cl.dir, "sentinel-%d" % p, "sentinel.conf"))
            res.check("sentinel resolve-hostnames yes" in conf and "sentinel announce-hostnames yes" in conf,
                      "sentinel %d: configuration without host names: %r" % (p, conf[:300]))
        # The services, with compose's sav.conf: only the addresses (here all on 127.0.0.1) and paths differ.
        env = dict(overrides, SAV_REDIS_SENTINELS=sentinel_list, SAV_NOTIFICATION_TEMPLATES=TEMPLATES_DIR,
                   SAV_CATALOG_PATH=CATALOG)
        for s in harness.SERVICES:
            env.update({"SAV_%s_ENDPOINT" % s.upper(): cl.endpoints[s], "SAV_%s_BIND" % s.upper(): "first",
                        "SAV_%s_HTTP_LISTEN" % s.upper(): "127.0.0.1:%d" % cl.http_ports[s]})
        for k in [k for k in os.environ if k.startswith("SAV_")]:
            del os.environ[k]
        os.environ.update(env)
        cl.config = COMPOSE_CONF
        for s in harness.SERVICES:
            cl.start_service(s, {"SAV_SERVICE_INSTANCE": s + "-1"})
        cl.wait_ready(30)
        res.check(cl.wait_redis_ready(15) is not None, "the services did not reach Redis through the sentinels")
        hc = {s: run([os.path.join(CONTAINER_DIR, "healthcheck.sh"), s],
                     dict(env, PATH=cl.bin_dir + ":" + os.environ.get("PATH", ""))).returncode
              for s in harness.SERVICES}
        res.check(set(hc.values()) == {0}, "healthcheck.sh against the running services: %s" % hc)
        r = cl.savctl("customer", "add", "--name", "Jeanne Martin", "--phone", "06 12 34 56 78")
        res.check(r.returncode == 0, "a write with wait_replicas 1: exit %d %s" % (r.returncode, r.stderr.strip()))
        h = {m: run([REDIS_START_SH, "health", m], env_for(p, m)).returncode
             for m, p in (("redis", rports[1]), ("sentinel", sports[0]))}
        h["dead"] = run([REDIS_START_SH, "health", "redis"], env_for(harness.free_ports(1)[0], "redis")).returncode
        res.check(h == {"redis": 0, "sentinel": 0, "dead": 1}, "redis-start.sh health: %s" % h)

        # Failover, then the old master back through redis-start.sh: a replica of the new master.
        old = rports[0]
        procs[old].sav_stopped_by_harness = True
        harness.stop_process(procs[old], signal.SIGKILL)
        t0 = time.monotonic()
        new = harness.wait_until(lambda: (master_port() not in (None, old)) and master_port(), 30, 0.2)
        if not res.check(new, "no failover within 30 s"):
            return res
        res.fig("failover_s", round(time.monotonic() - t0, 1))
        start(old, "redis")
        back = harness.wait_until(lambda: (role(old) or [None])[0] == "slave" and role(old), 20, 0.2)
        res.check(back and int(back[2]) == new, "the old master came back as %s, want a replica of %d" % (back, new))
        res.check("replica of 127.0.0.1:%d" % new in read_text(os.path.join(cl.dir, "redis-%d.log" % old)),
                  "redis-start.sh did not say it started as a replica of %d" % new)
        ok = harness.wait_until(lambda: cl.savctl("customer", "add", "--name", "Paul Durand", "--phone",
                                                  "06 98 76 54 32").returncode == 0, 20, 0.5)
        res.check(ok, "no write acknowledged within 20 s of the failover")
        denied = client(new, admin).execute_command("ACL", "LOG")
        res.check(not denied, "Redis ACL denials on the new master: %s" % denied[:3])
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        # The services stop with the end-of-test checks (exit 0 on SIGTERM), while their Redis still runs.
        codes = cl.stop_all(timeout=10)
        res.check(all(c == 0 for c in codes.values()), "services did not exit 0 on SIGTERM: %s" % codes)
        cl.config = saved_config
        for p in procs.values():
            p.sav_stopped_by_harness = True
            harness.stop_process(p, signal.SIGTERM, timeout=10)
    return res


# ---------------------------------------------------------------- Kubernetes

def k8s_pod_specs(docs):
    """[(kind/name, pod spec, workload)] of the StatefulSets and Deployments."""
    return [("%s/%s" % (d["kind"], d["metadata"]["name"]), d["spec"]["template"]["spec"], d) for d in docs
            if d.get("kind") in ("StatefulSet", "Deployment")]


def k8s_env(container):
    """The container's variables in order, $(VAR) references expanded from the ones before (Kubernetes rule),
    with POD_NAME and POD_IP given sample values by the caller."""
    return [(e["name"], e.get("value"), e.get("valueFrom")) for e in container.get("env", [])]


def expand_env(entries, fields):
    out, unresolved = {}, []
    for name, value, value_from in entries:
        if value_from:
            path = value_from.get("fieldRef", {}).get("fieldPath")
            out[name] = fields.get(path, "<%s>" % path)
            continue

        def sub(m):
            if m.group(1) in out:
                return out[m.group(1)]
            unresolved.append("%s: $(%s)" % (name, m.group(1)))
            return m.group(0)
        out[name] = re.sub(r"\$\((\w+)\)", sub, value or "")
    return out, unresolved


def secret_items(volume):
    sec = volume.get("secret") or {}
    return sec.get("secretName"), {i["key"]: i["path"] for i in sec.get("items", [])}


def k8s_resolve(container, volumes, path):
    """(volume, item path or rest) of a path inside a container: the mount that holds it, or (None, None)."""
    best = None
    for m in container.get("volumeMounts", []):
        t = m["mountPath"].rstrip("/")
        if (path == t or path.startswith(t + "/")) and (not best or len(t) > len(best["mountPath"])):
            best = m
    if not best:
        return None, None
    return volumes.get(best["name"]), path[len(best["mountPath"].rstrip("/")) + 1:]


def test_deploy_k8s(cl):
    res = Result()
    try:
        import yaml  # noqa: F401
    except ImportError:
        res.check(False, "python3-yaml is not installed (tools/deps.sh installs it)")
        return res
    if not check_loads(cl, res, K8S_CONF):
        return res
    settings = setting_names()
    version = makefile_version()
    stages = dockerfile_stages(dockerfile_instructions(DOCKERFILE))
    runtime_paths = stage_image_paths([s for s in stages if s["name"] == "runtime"][0])
    files = sorted(f for f in os.listdir(K8S_DIR) if f.endswith((".yaml", ".yml")))
    docs_by_file = {}
    for f in files:
        try:
            docs_by_file[f] = load_yaml_all(os.path.join(K8S_DIR, f))
        except Exception as e:  # a YAML error names the file and line
            res.check(False, "%s does not parse: %s" % (f, e))
    res.fig("yaml_files", len(docs_by_file))
    kust = (docs_by_file.get("kustomization.yaml") or [{}])[0]
    listed = kust.get("resources", [])
    manifests = [f for f in files if f not in ("kustomization.yaml", "secrets.example.yaml")]
    res.check(sorted(listed) == manifests, "kustomization.yaml resources %s, want every manifest %s" % (
        sorted(listed), manifests))
    res.check("secrets.example.yaml" not in listed, "kustomization.yaml applies the placeholder Secrets")
    gens = {g["name"]: g for g in kust.get("configMapGenerator", [])}
    gen_files = {}
    for name, g in gens.items():
        for f in g.get("files", []):
            key, _, src = f.partition("=") if "=" in f else (os.path.basename(f), "", f)
            res.check(os.path.isfile(os.path.join(K8S_DIR, src or f)), "configMapGenerator %s: %s missing" % (name, f))
            gen_files[(name, key)] = src or f
    res.check(gens.get("sav-config") and ("sav-config", "sav.conf") in gen_files, "no ConfigMap sav-config with "
              "sav.conf")
    docs = [d for f in manifests for d in docs_by_file.get(f, [])]
    by_kind = collections.defaultdict(dict)
    for d in docs:
        res.check(d.get("apiVersion") and d.get("kind") and d.get("metadata", {}).get("name"),
                  "a document without apiVersion, kind or name: %s" % str(d)[:100])
        res.check("namespace" not in d.get("metadata", {}), "%s/%s names a namespace" % (d.get("kind"),
                                                                                        d["metadata"].get("name")))
        by_kind[d["kind"]][d["metadata"]["name"]] = d
    res.fig("objects", {k: len(v) for k, v in sorted(by_kind.items())})
    example = {d["metadata"]["name"]: set((d.get("stringData") or {}).keys()) | set((d.get("data") or {}).keys())
               for d in docs_by_file.get("secrets.example.yaml", []) if d.get("kind") == "Secret"}

    # What make-secrets.sh makes: the Secrets' keys (one per file), created with kubectl as it says.
    d = os.path.join(cl.dir, "k8s-secrets")
    fake = os.path.join(cl.dir, "kubectl")
    log = os.path.join(cl.dir, "kubectl.log")
    with open(fake, "w") as f:
        f.write('#!/bin/sh\necho "$*" >> %s\n[ "$1" = apply ] && cat > /dev/null\nexit 0\n' % log)
    os.chmod(fake, 0o755)
    r = run([os.path.join(K8S_DIR, "make-secrets.sh"), d, "--namespace=test"],
            {"SAVCTL": cl.binary("savctl"), "KUBECTL": fake})
    made = {}
    if res.check(r.returncode == 0, "make-secrets.sh: exit %d %s%s" % (r.returncode, r.stdout, r.stderr)):
        check_materials(res, d, "make-secrets.sh")
        made = {"sav-curve": set(os.listdir(os.path.join(d, "keys"))),
                "sav-redis": set(os.listdir(os.path.join(d, "secrets")))}
        calls = read_text(log).splitlines()
        for name, sub in (("sav-curve", "keys"), ("sav-redis", "secrets")):
            res.check("create secret generic %s --from-file=%s --dry-run=client -o yaml --namespace=test" % (
                name, os.path.join(d, sub)) in calls, "make-secrets.sh did not create %s from %s: %s" % (
                    name, sub, calls))
        res.check(calls.count("apply -f - --namespace=test") == 2, "make-secrets.sh applies: %s" % calls)
        for name, keys in made.items():
            res.check(example.get(name) == keys, "secrets.example.yaml %s has keys %s, make-secrets.sh makes %s" % (
                name, sorted(example.get(name, ())), sorted(keys)))

    conf_get_k = lambda key, env=None: conf_get(cl, K8S_CONF, key, env)[1]  # noqa: E731
    svc_objs, sts = by_kind.get("Service", {}), by_kind.get("StatefulSet", {})
    pdbs = by_kind.get("PodDisruptionBudget", {})
    images_ok = {"sav:%s" % version, "sav-redis:%s" % version}
    n_env = 0
    pods = {}
    for kind_name, spec, wl in k8s_pod_specs(docs):
        what = kind_name
        labels = wl["spec"]["template"]["metadata"].get("labels", {})
        sel = wl["spec"]["selector"].get("matchLabels", {})
        res.check(sel and all(labels.get(k) == v for k, v in sel.items()), "%s: selector %s does not match its pods "
                  "%s" % (what, sel, labels))
        psc = spec.get("securityContext", {})
        res.check(psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) != 0, "%s: pod securityContext %s: "
                  "want runAsNonRoot and a non-root runAsUser" % (what, psc))
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        claims = {c["metadata"]["name"] for c in wl["spec"].get("volumeClaimTemplates", [])}
        used = set()
        for v in volumes.values():
            if v.get("secret"):
                name, items = secret_items(v)
                res.check(v["secret"].get("defaultMode") in (0o400, 0o440), "%s: Secret volume %s defaultMode %s, "
                          "want 0400 or 0440" % (what, v["name"], v["secret"].get("defaultMode")))
                res.check(psc.get("fsGroup"), "%s: mounts a Secret without fsGroup: the non-root user cannot read "
                          "it" % what)
                res.check(set(items) <= made.get(name, set()) and set(items) <= example.get(name, set()),
                          "%s: volume %s wants keys %s of Secret %s, which make-secrets.sh (%s) or "
                          "secrets.example.yaml do not have" % (what, v["name"], sorted(set(items) - made.get(
                              name, set())), name, sorted(made.get(name, ()))))
            if v.get("configMap"):
                res.check(v["configMap"]["name"] in gens, "%s: ConfigMap %s is not generated by kustomization.yaml"
                          % (what, v["configMap"]["name"]))
        containers = spec.get("initContainers", []) + spec.get("containers", [])
        for c in containers:
            cw = "%s container %s" % (what, c["name"])
            res.check(c.get("image") in images_ok, "%s: image %s, want one of %s (SAV_VERSION)" % (
                cw, c.get("image"), sorted(images_ok)))
            args = c.get("args", [])
            res.check(args and args[0] in (ENTRY_COMMANDS if c.get("image", "").startswith("sav:") else REDIS_MODES),
                      "%s: args %s: not a command of its image's entry point" % (cw, args))
            sc = c.get("securityContext", {})
            res.check(sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False and
                      "ALL" in sc.get("capabilities", {}).get("drop", []), "%s: securityContext %s" % (cw, sc))
            rs = c.get("resources", {})
            res.check(rs.get("requests", {}).get("memory") and rs.get("limits", {}).get("memory"),
                      "%s: no memory request and limit" % cw)
            for m in c.get("volumeMounts", []):
                used.add(m["name"])
                res.check(m["name"] in volumes or m["name"] in claims, "%s: mounts %s, no such volume" % (
                    cw, m["name"]))
            entries = k8s_env(c)
            env, unresolved = expand_env(entries, {"metadata.name": "%s-0" % wl["metadata"]["name"],
                                                   "status.podIP": "10.1.2.3"})
            res.check(not unresolved, "%s: references to undefined or later variables: %s" % (cw, unresolved))
            n_env += check_env_settings(cl, res, K8S_CONF, {k: v for k, v in env.items()}, cw, settings)
            if c.get("image", "").startswith("sav:"):
                cfg = env.get("SAV_CONFIG", "")
                vol, rest = k8s_resolve(c, volumes, cfg)
                res.check(vol and vol.get("configMap", {}).get("name") == "sav-config" and
                          gen_files.get(("sav-config", rest)) == "sav.conf", "%s: SAV_CONFIG %s is not sav.conf of "
                          "the ConfigMap sav-config" % (cw, cfg))
        res.check(not set(volumes) - used, "%s: volumes never mounted: %s" % (what, sorted(set(volumes) - used)))
        pods[kind_name] = (spec, wl, volumes)
    res.fig("env_checked", n_env)

    # Each SAV service: headless Service and StatefulSet of its name, its endpoints the pods' stable names.
    tmp_fields = {}
    for s in harness.SERVICES:
        svc, st = svc_objs.get(s), sts.get(s)
        if not res.check(svc and st, "no Service and StatefulSet %s" % s):
            continue
        res.check(svc["spec"].get("clusterIP") == "None" and st["spec"].get("serviceName") == s,
                  "%s: Service not headless or StatefulSet serviceName %s" % (s, st["spec"].get("serviceName")))
        pod_labels = st["spec"]["template"]["metadata"].get("labels", {})
        res.check(svc["spec"].get("selector") and all(pod_labels.get(k) == v for k, v in
                                                      svc["spec"]["selector"].items()),
                  "%s: the Service selects %s, not the StatefulSet's pods %s" % (s, svc["spec"].get("selector"),
                                                                                 pod_labels))
        replicas = st["spec"].get("replicas", 1)
        eps = tcp_endpoints(conf_get_k(s + ".endpoint"))
        port = eps[0][1]
        want = [("%s-%d.%s" % (s, i, s), port) for i in range(replicas)]
        res.check(eps == want, "%s.endpoint %s, want the StatefulSet's %d pods %s" % (s, eps, replicas, want))
        ports = {p["name"]: p for p in svc["spec"].get("ports", [])}
        spec, wl, volumes = pods["StatefulSet/" + s]
        main = [c for c in spec["containers"] if c["name"] == s]
        if not res.check(main, "StatefulSet %s has no container %s" % (s, s)):
            continue
        main = main[0]
        cports = {p["name"]: p["containerPort"] for p in main.get("ports", [])}
        listen = conf_get_k(s + ".http_listen")
        hport = int(listen.rpartition(":")[2]) if listen != "off" else None
        res.check(cports.get("zmq") == port and ports.get("zmq", {}).get("port") == port,
                  "%s: zmq port %s (container) / %s (Service), endpoint port %s" % (
                      s, cports.get("zmq"), ports.get("zmq", {}).get("port"), port))
        res.check(cports.get("http") == hport and ports.get("http", {}).get("port") == hport,
                  "%s: http port %s (container) / %s (Service), http_listen %s" % (
                      s, cports.get("http"), ports.get("http", {}).get("port"), listen))
        for probe, path in (("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready")):
            g = main.get(probe, {}).get("httpGet", {})
            p = cports.get(g.get("port"), g.get("port"))
            res.check(g.get("path") == path and p == hport, "%s: %s %s, want GET %s on %s" % (s, probe, g, path, hport))
        env, _ = expand_env(k8s_env(main), {"metadata.name": "%s-1" % s, "status.podIP": "10.1.2.3"})
        res.check(env.get("SAV_SERVICE_INSTANCE") == "%s-1" % s, "%s: SAV_SERVICE_INSTANCE is %r, want the pod's "
                  "name" % (s, env.get("SAV_SERVICE_INSTANCE")))
        res.check(env.get("SAV_%s_BIND" % s.upper()) == "tcp://10.1.2.3:%d" % port, "%s: SAV_%s_BIND %r, want the "
                  "pod's IP on %d" % (s, s.upper(), env.get("SAV_%s_BIND" % s.upper()), port))
        init = [c for c in spec.get("initContainers", []) if c.get("args", [])[:2] == ["install-keys", s]]
        res.check(init, "%s: no init container install-keys %s" % (s, s))
        pdb = pdbs.get(s, {})
        res.check(pdb.get("spec", {}).get("selector", {}).get("matchLabels") == wl["spec"]["selector"]["matchLabels"]
                  and 0 < pdb["spec"].get("minAvailable", 0) < replicas, "%s: PodDisruptionBudget %s" % (
                      s, pdb.get("spec")))
        tmp_fields[s] = (spec, main, volumes, init[0] if init else None, replicas, port)
    res.fig("statefulsets", {s: v[4] for s, v in tmp_fields.items()})

    # Redis and Sentinel: the names and ports of sav.conf and of redis-start.sh's variables agree.
    rs, ss = sts.get("redis"), sts.get("sentinel")
    if res.check(rs and ss and svc_objs.get("redis") and svc_objs.get("sentinel"), "no redis and sentinel "
                 "StatefulSets and Services"):
        sport = int(script_default(REDIS_START_SH, "SENTINEL_PORT"))
        conf_sentinels = conf_get_k("redis.sentinels")
        n_sent = ss["spec"]["replicas"]
        res.check(sorted(host_ports(conf_sentinels)) == sorted(("sentinel-%d.sentinel" % i, sport)
                                                               for i in range(n_sent)),
                  "redis.sentinels %s, want the %d sentinel pods on %d" % (conf_sentinels, n_sent, sport))
        res.check(int(conf_get_k("redis.wait_replicas")) <= rs["spec"]["replicas"] - 1, "wait_replicas %s with %d "
                  "servers" % (conf_get_k("redis.wait_replicas"), rs["spec"]["replicas"]))
        for name, st, mode, port in (("redis", rs, "redis", int(script_default(REDIS_START_SH, "REDIS_PORT"))),
                                     ("sentinel", ss, "sentinel", sport)):
            svc = svc_objs[name]
            res.check(svc["spec"].get("clusterIP") == "None" and svc["spec"].get("publishNotReadyAddresses") is True
                      and st["spec"].get("serviceName") == name, "%s: want a headless Service publishing not-ready "
                      "addresses (Sentinel needs the names before readiness)" % name)
            spec, wl, volumes = pods["StatefulSet/" + name]
            c = spec["containers"][0]
            res.check(c.get("args") == [mode], "%s: args %s, want [%s]" % (name, c.get("args"), mode))
            env, _ = expand_env(k8s_env(c), {"metadata.name": "%s-2" % name})
            unknown = [k for k in env if k not in redis_start_variables() | {"POD_NAME"}]
            res.check(not unknown, "%s: %s unknown to redis-start.sh" % (name, unknown))
            res.check(env.get("REDIS_ANNOUNCE_HOST") == "%s-2.%s" % (name, name), "%s: REDIS_ANNOUNCE_HOST %r" % (
                name, env.get("REDIS_ANNOUNCE_HOST")))
            res.check(env.get("REDIS_INITIAL_MASTER") == "redis-0.redis", "%s: REDIS_INITIAL_MASTER %r" % (
                name, env.get("REDIS_INITIAL_MASTER")))
            res.check(sorted(host_ports(env.get("REDIS_SENTINELS", ""))) == sorted(host_ports(conf_sentinels)),
                      "%s: REDIS_SENTINELS is not redis.sentinels" % name)
            res.check(env.get("REDIS_MASTER_NAME", "sav") == conf_get_k("redis.master_name"), "%s: master name" % name)
            res.check([p["containerPort"] for p in c.get("ports", [])] == [port] and
                      [p["port"] for p in svc["spec"]["ports"]] == [port], "%s: ports, want %d" % (name, port))
            sec_dir = env.get("REDIS_SECRETS_DIR", script_default(REDIS_START_SH, "REDIS_SECRETS_DIR"))
            need = {"redis-admin", "redis-sentinel"} | ({"users.acl"} if mode == "redis" else set())
            for f in need:
                vol, rest = k8s_resolve(c, volumes, sec_dir + "/" + f)
                sname, items = secret_items(vol or {})
                res.check(sname == "sav-redis" and items.get(rest) == rest, "%s: %s/%s is not item %s of the "
                          "Secret sav-redis" % (name, sec_dir, f, f))
            data_dir = env.get("REDIS_DATA_DIR", script_default(REDIS_START_SH, "REDIS_DATA_DIR"))
            res.check(any(m["mountPath"] == data_dir and m["name"] in {t["metadata"]["name"] for t in
                                                                      wl["spec"].get("volumeClaimTemplates", [])}
                          for m in c.get("volumeMounts", [])), "%s: %s is not a persistent volume" % (name, data_dir))
            probe = c.get("readinessProbe", {}).get("exec", {}).get("command", [])
            res.check(probe[:3] == ["/usr/lib/sav/redis-start.sh", "health", mode], "%s: readiness probe %s" % (
                name, probe))
            pdb = pdbs.get(name, {})
            res.check(pdb.get("spec", {}).get("maxUnavailable") == 1, "%s: PodDisruptionBudget %s" % (
                name, pdb.get("spec")))

    # The pods' view of sav.conf: every path it names is a mount and item the pod has; emulated here (Secret
    # files 0440 as the kubelet makes them with fsGroup, install-keys.sh into the emptyDir), each instance passes
    # --check-config.
    sav_paths = {"keys": conf_get_k("security.keys_dir"), "clients": conf_get_k("security.clients"),
                 "sentinel": conf_get_k("redis.sentinel_password")[len("file:"):]}
    for key, path in (("notification.templates", conf_get_k("notification.templates")),
                      ("catalog.path", conf_get_k("catalog.path"))):
        res.check(path in runtime_paths, "%s %s is not in the image" % (key, path))
    valid = 0
    for s, (spec, main, volumes, init, replicas, port) in tmp_fields.items():
        if not made:
            break
        pod = os.path.join(cl.dir, "pod-" + s)
        paths = dict(sav_paths, own=conf_get_k(s + ".redis_password")[len("file:"):])
        mounts = {}
        overrides = {}
        for k, path in paths.items():
            vol, rest = k8s_resolve(main, volumes, path)
            if not res.check(vol, "%s: %s (%s) is on no volume of the container" % (s, k, path)):
                continue
            emu = os.path.join(pod, vol["name"])
            os.makedirs(emu, exist_ok=True)
            if vol.get("secret"):
                name, items = secret_items(vol)
                src = os.path.join(d, "keys" if name == "sav-curve" else "secrets")
                for key, item in items.items():
                    target = os.path.join(emu, item)
                    if not os.path.exists(target) and os.path.exists(os.path.join(src, key)):  # else reported
                        shutil.copy(os.path.join(src, key), target)
                        os.chmod(target, 0o440)
                res.check(rest in items.values(), "%s: %s (%s) is no item of the Secret %s" % (s, k, path, name))
            elif "emptyDir" in vol and k == "keys":
                mounts["keys"] = emu
            overrides[k] = os.path.join(emu, rest) if rest else emu
        if not init or "keys" not in mounts:
            res.check(False, "%s: security.keys_dir is not the emptyDir the init container fills" % s)
            continue
        curve_vol, _ = k8s_resolve(init, volumes, init["args"][2])
        curve = os.path.join(pod, curve_vol["name"]) if curve_vol else None
        res.check(curve_vol and curve_vol.get("secret") and k8s_resolve(init, volumes, paths["keys"])[0] is
                  volumes.get("keys"), "%s: the init container does not copy the Secret into keys_dir" % s)
        if curve and not os.path.exists(os.path.join(curve, s + ".key")):
            name, items = secret_items(curve_vol)
            os.makedirs(curve, exist_ok=True)
            for key, item in items.items():
                if os.path.exists(os.path.join(d, "keys", key)):  # else reported above
                    shutil.copy(os.path.join(d, "keys", key), os.path.join(curve, item))
                    os.chmod(os.path.join(curve, item), 0o440)
        ik = run([os.path.join(CONTAINER_DIR, "install-keys.sh"), s, curve or "/nonexistent"],
                 {"SAV_CONFIG": K8S_CONF, "SAV_SECURITY_KEYS_DIR": mounts["keys"],
                  "PATH": cl.bin_dir + ":" + os.environ.get("PATH", "")})
        res.check(ik.returncode == 0, "install-keys.sh %s: exit %d %s" % (s, ik.returncode, ik.stderr.strip()))
        env = {"SAV_SECURITY_KEYS_DIR": overrides.get("keys", ""), "SAV_SECURITY_CLIENTS": overrides.get("clients", ""),
               "SAV_REDIS_SENTINEL_PASSWORD": "file:" + overrides.get("sentinel", ""),
               "SAV_%s_REDIS_PASSWORD" % s.upper(): "file:" + overrides.get("own", ""),
               "SAV_NOTIFICATION_TEMPLATES": TEMPLATES_DIR, "SAV_CATALOG_PATH": CATALOG}
        for i in range(replicas):
            pod_env, _ = expand_env(k8s_env(main), {"metadata.name": "%s-%d" % (s, i),
                                                    "status.podIP": "10.1.2.%d" % (i + 10)})
            sav_env = {k: v for k, v in pod_env.items() if k.startswith("SAV_") and k != "SAV_CONFIG"}
            c = check_config(cl, s, K8S_CONF, dict(sav_env, **env))
            valid += res.check(c.returncode == 0, "k8s %s-%d: sav-%s --check-config: exit %d %s%s" % (
                s, i, s, c.returncode, c.stdout, c.stderr))
        # Why install-keys.sh: the Secret's own 0440 copy of the key is refused.
        if s == "intake" and curve:
            c = check_config(cl, s, K8S_CONF, dict(env, SAV_SECURITY_KEYS_DIR=curve, SAV_INTAKE_BIND="tcp://10.1.2.10:%d"
                                                   % port))
            res.check(c.returncode == 1 and "readable by others" in c.stderr, "the Secret's 0440 key used as it is: "
                      "exit %d %r, want refused" % (c.returncode, c.stderr.strip()))
    res.fig("check_config_ok", valid)
    # The savctl Deployment acts as client.identity with the keys its init container copies.
    dep = by_kind.get("Deployment", {}).get("savctl")
    if res.check(dep, "no Deployment savctl"):
        spec = dep["spec"]["template"]["spec"]
        ident = conf_get_k("client.identity")
        init = [c for c in spec.get("initContainers", []) if c.get("args", [])[:2] == ["install-keys", ident]]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        res.check(init, "savctl: no init container install-keys %s (client.identity)" % ident)
        curve_items = secret_items(volumes.get("curve", {}))[1]
        res.check({ident + ".key", ident + ".pub"} | {s + ".pub" for s in harness.SERVICES} <= set(curve_items),
                  "savctl: the Secret items %s lack %s's pair or a service's public key" % (sorted(curve_items), ident))

    # kustomize, built into kubectl, renders offline; apply --dry-run needs an API server.
    kubectl = shutil.which("kubectl")
    if kubectl:
        r = run([kubectl, "kustomize", K8S_DIR], {"HOME": cl.dir}, timeout=60)
        if res.check(r.returncode == 0, "kubectl kustomize: exit %d %s" % (r.returncode, r.stderr.strip()[:500])):
            out = list(yaml.safe_load_all(r.stdout))
            cms = [o for o in out if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("sav-config-")]
            res.check(len(cms) == 1 and cms[0]["data"].get("sav.conf") == read_text(K8S_CONF),
                      "kustomize: no ConfigMap sav-config-<hash> holding sav.conf")
            refs = [v["configMap"]["name"] for o in out if o["kind"] in ("StatefulSet", "Deployment")
                    for v in o["spec"]["template"]["spec"].get("volumes", []) if v.get("configMap")]
            res.check(cms and refs and set(refs) == {cms[0]["metadata"]["name"]}, "kustomize: pods refer to %s" %
                      sorted(set(refs)))
            res.check(len(out) == len(docs) + len(gens), "kustomize rendered %d objects, want %d" % (
                len(out), len(docs) + len(gens)))
            res.fig("kustomize", "%d objects" % len(out))
    else:
        res.fig("kustomize", "skipped: no kubectl")
    res.fig("kubectl_dry_run", "not run: kubectl apply --dry-run=client needs an API server (discovery)")
    return res


TESTS = [
    ("deploy_systemd", test_deploy_systemd),
    ("deploy_container", test_deploy_container),
    ("deploy_redis_start", test_deploy_redis_start),
    ("deploy_k8s", test_deploy_k8s),
]


if __name__ == "__main__":
    sys.exit(fixtures.standalone(TESTS, __doc__))
