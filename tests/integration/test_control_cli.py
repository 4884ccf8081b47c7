"""The control CLI (shift, rollback, status, kv) and the scripts that wrap it,
driving a real daemon's admin API: results, exit codes, and that the bearer
token never shows in any output."""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

ADMIN_LISTEN_RE = re.compile(r"admin API listening on 127\.0\.0\.1:(\d+)")
TOKEN = "tok-7f3a9c1e5b2d4f60a8e7c9b1d3f5a7c9"  # distinctive, so any leak is found
TOKEN_ENV = "FIGSHIFT_IT_CONTROL_TOKEN"  # the daemon reads its token from here (admin.token_env)
os.environ[TOKEN_ENV] = TOKEN  # inherited by the daemons started below, never by the CLI

SCRIPTS = os.path.join(h.REPO, "scripts")


def admin_port(d: h.Daemon, timeout: float = 5.0) -> int:
    """The admin port of a daemon started with admin port 0, from its log."""
    deadline = time.time() + timeout
    while True:
        for line in d.log_lines():
            m = ADMIN_LISTEN_RE.search(line)
            if m:
                return int(m.group(1))
        if time.time() > deadline:
            raise AssertionError("no 'admin API listening on 127.0.0.1:<port>' in the log\n" + d.logs())
        time.sleep(0.05)


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr

    @property
    def out(self):
        return self.stdout + self.stderr

    def __repr__(self):
        return "exit %s\n--- stdout\n%s--- stderr\n%s" % (self.returncode, self.stdout, self.stderr)


class ControlCliTest(h.ThreeUpstreamsMixin, h.FigTestCase):
    B2_ROUTE = "/users"

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="figshift-ctl-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", self.tmp]))

    # -- helpers -------------------------------------------------------------

    def store(self, **extra):
        return self.migration_store(0, **{"legacy-upstream": "A", **extra})

    def start(self, store=None, token=False):
        cfg = {"admin": {"token_env": TOKEN_ENV}} if token else None
        d = self.daemon(store if store is not None else self.store(), cfg)
        d.admin_url = "http://127.0.0.1:%d" % admin_port(d)
        return d

    def env(self, url=None, token=None):
        env = {k: v for k, v in os.environ.items()
               if k not in ("FIGSHIFT_ADMIN_URL", "FIGSHIFT_ADMIN_TOKEN", TOKEN_ENV)}
        if url:
            env["FIGSHIFT_ADMIN_URL"] = url
        if token is not None:
            env["FIGSHIFT_ADMIN_TOKEN"] = token
        env["FIGSHIFT_BIN"] = h.figshift_bin()
        return env

    def check_no_token(self, r: Result):
        self.assertNotIn(TOKEN, r.out, "the token leaked into the output:\n%r" % r)

    def cli(self, d, *args, token=None, timeout=30, url=None):
        """Runs `figshift <args>` against daemon d (via FIGSHIFT_ADMIN_URL)."""
        p = subprocess.run([h.figshift_bin(), *args], capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL, env=self.env(url or (d.admin_url if d else None), token))
        r = Result(p.returncode, p.stdout, p.stderr)
        self.check_no_token(r)
        return r

    def script(self, d, name, *args, timeout=60, token=None):
        p = subprocess.run(["bash", os.path.join(SCRIPTS, name), *args], capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL,
                           env=self.env(d.admin_url if d else None, token), cwd=self.tmp)
        r = Result(p.returncode, p.stdout, p.stderr)
        self.check_no_token(r)
        return r

    def ok(self, r: Result):
        self.assertEqual(r.returncode, 0, repr(r))
        return r

    def status(self, d, token=None) -> dict:
        r = self.ok(self.cli(d, "status", "--json", token=token))
        return json.loads(r.stdout)

    def write(self, name, text):
        p = os.path.join(self.tmp, name)
        with open(p, "w") as f:
            f.write(text)
        return p

    # -- shift / rollback / status ------------------------------------------

    def test_shift_no_wait_then_rollback(self):
        d = self.start()
        t0 = time.time()
        r = self.ok(self.cli(d, "shift", "40", "--over", "60", "--no-wait"))
        self.assertLess(time.time() - t0, 5, "--no-wait must return at once")
        self.assertIn("40%", r.stdout)
        st = self.status(d)
        self.assertEqual(st["traffic_split"], 40)
        self.assertTrue(st["ramp"]["active"], st)
        self.assertEqual(st["ramp"]["to"], 40)

        r = self.ok(self.cli(d, "rollback"))
        self.assertRegex(r.stdout, r"split now 0%")
        st = self.status(d)
        self.assertEqual((st["split"], st["traffic_split"], st["ramp"]), (0, 0, None))

    def test_shift_at_once(self):
        d = self.start()
        r = self.ok(self.cli(d, "shift", "15"))
        self.assertIn("split now 15%", r.stdout)
        st = self.status(d)
        self.assertEqual((st["split"], st["traffic_split"]), (15, 15))

    def test_shift_ramp_shows_progress_until_done(self):
        d = self.start()
        for i in range(10):  # before the shift: not counted in "since shift"
            d.get("/other/%d" % i, user="user%d" % i)
        p = subprocess.Popen([h.figshift_bin(), "shift", "30", "--over", "2"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL, env=self.env(d.admin_url))
        try:
            first = p.stdout.readline()
            self.assertIn("ramp started", first)
            for i in range(20):  # during the ramp
                self.assertEqual(d.get("/x/%d" % i, user="user%d" % i).status, 200)
            out, err = p.communicate(timeout=20)
        finally:
            if p.poll() is None:
                p.kill()
        r = Result(p.returncode, first + out, err)
        self.check_no_token(r)
        self.assertEqual(r.returncode, 0, repr(r))
        self.assertNotIn("\r", r.stdout, "not a TTY: one line per update, no redraw")
        progress = [l for l in r.stdout.splitlines() if re.match(r"split \d+% -> 30%", l)]
        self.assertGreaterEqual(len(progress), 1, repr(r))
        for line in progress:
            self.assertRegex(line, r"\[[#-]{20}\]\s+\d+%\s+\d+s left")
        last = r.stdout.splitlines()[-1]
        self.assertRegex(last, r"^done: split 30%", repr(r))
        counts = dict((k, int(v)) for k, v in re.findall(r"\b([A-Z0-9]+)=(\d+)", last))
        self.assertEqual(set(counts), {"A", "B1", "B2"}, last)
        self.assertEqual(sum(counts.values()), 20, "requests since the shift: " + last)
        st = self.status(d)
        self.assertEqual((st["split"], st["traffic_split"]), (30, 30))

    def test_sigint_stops_watching_not_the_ramp(self):
        d = self.start()
        p = subprocess.Popen([h.figshift_bin(), "shift", "50", "--over", "60"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL, env=self.env(d.admin_url))
        try:
            self.assertIn("ramp started", p.stdout.readline())
            self.assertRegex(p.stdout.readline(), r"^split \d+% -> 50%")
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=10)
        finally:
            if p.poll() is None:
                p.kill()
        self.assertEqual(p.returncode, 0, out + err)
        self.assertIn("stopped watching; the ramp keeps running in the daemon (figshift status to check, "
                      "figshift rollback to undo)", out)
        st = self.status(d)
        self.assertTrue(st["ramp"]["active"], st)
        self.assertEqual(st["traffic_split"], 50)

    def test_watch_ends_with_exit_1_when_the_ramp_is_replaced(self):
        d = self.start()
        p = subprocess.Popen([h.figshift_bin(), "shift", "50", "--over", "60"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL, env=self.env(d.admin_url))
        try:
            self.assertIn("ramp started", p.stdout.readline())
            self.ok(self.cli(d, "rollback"))
            out, err = p.communicate(timeout=10)
        finally:
            if p.poll() is None:
                p.kill()
        self.assertEqual(p.returncode, 1, out + err)
        self.assertIn("the ramp was replaced", out)

    def test_status_human(self):
        d = self.start(self.store(**{"traffic-split": "20"}))
        d.get("/orders/1", user="user1")
        r = self.ok(self.cli(d, "status"))
        for needle in ("split", "20%", "mode", "proxy", "legacy", "version", "etag", self.a.url(), self.b1.url(),
                       "/orders", "/v2/orders", "/users"):
            self.assertIn(needle, r.stdout)
        self.assertRegex(r.stdout, r"ramp\s+none")

    def test_usage_errors_exit_2(self):
        for args in (["shift", "101"], ["shift"], ["shift", "10", "--over", "-1"], ["kv", "put", "k"], ["kv"],
                     ["status", "--admin", "https://127.0.0.1:1"], ["status", "--nope"]):
            r = self.cli(None, *args)
            self.assertEqual(r.returncode, 2, "%s: %r" % (args, r))

    def test_help_documents_exit_codes(self):
        r = self.ok(self.cli(None, "--help"))
        for needle in ("3 cannot connect", "4 unauthorized", "5 precondition failed", "6 invalid"):
            self.assertIn(needle, r.stdout)

    # -- kv ------------------------------------------------------------------

    def test_kv_round_trip_with_encoded_key(self):
        d = self.start()
        r = self.ok(self.cli(d, "kv", "put", "route:/über/x~y", "B2 /v3"))
        self.assertRegex(r.stdout, r"version \d+")
        self.assertEqual(d.read_store()["route:/über/x~y"], "B2 /v3")
        self.assertEqual(self.ok(self.cli(d, "kv", "get", "route:/über/x~y")).stdout, "B2 /v3\n")
        j = json.loads(self.ok(self.cli(d, "kv", "get", "route:/orders", "--json")).stdout)
        self.assertEqual(j["value"], "B1 /v2/orders")
        self.assertEqual(j["etag"], self.status(d)["etag"])
        self.ok(self.cli(d, "kv", "delete", "route:/über/x~y"))
        self.assertNotIn("route:/über/x~y", d.read_store())
        r = self.cli(d, "kv", "get", "route:/über/x~y")
        self.assertEqual(r.returncode, 1, repr(r))
        self.assertIn("not found", r.stderr)
        r = self.cli(d, "kv", "delete", "route:/über/x~y")
        self.assertEqual(r.returncode, 1, repr(r))

    def test_kv_invalid_value_exit_6_names_the_key(self):
        d = self.start()
        before = d.read_store()
        r = self.cli(d, "kv", "put", "traffic-split", "150")
        self.assertEqual(r.returncode, 6, repr(r))
        self.assertIn("traffic-split", r.stderr)
        r = self.cli(d, "kv", "put", "route:/zzz", "NOPE")
        self.assertEqual(r.returncode, 6, repr(r))
        self.assertIn("route:/zzz", r.stderr)
        self.assertEqual(d.read_store(), before)

    def test_stale_if_match_exit_5(self):
        d = self.start()
        etag = json.loads(self.ok(self.cli(d, "kv", "get", "traffic-split", "--json")).stdout)["etag"]
        self.ok(self.cli(d, "kv", "put", "hash-salt", "one", "--if-match", etag))
        r = self.cli(d, "kv", "put", "hash-salt", "two", "--if-match", etag)
        self.assertEqual(r.returncode, 5, repr(r))
        self.assertIn("the store changed since you read it; re-read and retry", r.stderr)
        r = self.cli(d, "kv", "delete", "hash-salt", "--if-match", etag)
        self.assertEqual(r.returncode, 5, repr(r))
        self.assertEqual(d.read_store()["hash-salt"], "one")
        # Shells eat quotes: an unquoted ETag is quoted by the CLI.
        current = self.status(d)["etag"]
        self.ok(self.cli(d, "kv", "put", "hash-salt", "three", "--if-match", current.strip('"')))
        f = self.write("imp.json", h.kvs_json({"hash-salt": "four"}))
        r = self.cli(d, "kv", "import", f, "--if-match", current)
        self.assertEqual(r.returncode, 5, repr(r))
        self.assertEqual(d.read_store()["hash-salt"], "three")

    def test_export_import_replace_gives_identical_store(self):
        d1 = self.start(self.store(**{"traffic-split": "25", "hash-salt": "s1", "mode": "proxy"}))
        d2 = self.start({"APIGW_A_URL": self.a.url(), "APIGW_OLD_URL": self.b1.url(), "legacy-upstream": "A",
                         "route:/legacy": "OLD", "traffic-split": "5"})
        exported = self.ok(self.cli(d1, "kv", "export")).stdout
        self.assertEqual({e["key"]: e["value"] for e in json.loads(exported)["data"]}, d1.read_store())
        path = os.path.join(self.tmp, "export.json")
        r = self.ok(self.cli(d1, "kv", "export", "--output", path))
        self.assertIn("exported", r.stdout)
        with open(path) as f:
            self.assertEqual(f.read(), exported)

        r = self.ok(self.cli(d2, "kv", "import", path, "--replace"))
        self.assertIn("deleted 2", r.stdout)
        self.assertEqual(self.ok(self.cli(d2, "kv", "export")).stdout, exported)
        self.assertEqual(self.status(d2)["etag"], self.status(d1)["etag"])

    def test_import_without_replace_keeps_other_keys_and_match_filters(self):
        d = self.start(self.store(**{"hash-salt": "keep"}))
        f = self.write("urls.json", h.kvs_json({"APIGW_B2_URL": self.a.url(), "traffic-split": "99"}))
        self.ok(self.cli(d, "kv", "import", f, "--match", "APIGW_*_URL"))
        s = d.read_store()
        self.assertEqual((s["APIGW_B2_URL"], s["traffic-split"], s["hash-salt"]), (self.a.url(), "0", "keep"))
        self.ok(self.cli(d, "kv", "import", f))
        self.assertEqual(d.read_store()["traffic-split"], "99")
        bad = self.write("bad.json", '{"data":[{"key":"traffic-split","value":"x"}]}')
        r = self.cli(d, "kv", "import", bad)
        self.assertEqual(r.returncode, 6, repr(r))
        self.assertIn("traffic-split", r.stderr)
        r = self.cli(d, "kv", "import", self.write("notkvs.json", "[1,2]"))
        self.assertEqual(r.returncode, 1, repr(r))

    # -- errors: auth, unreachable -------------------------------------------

    def test_token_required_exit_4_and_never_printed(self):
        d = self.start(token=True)
        for token in (None, "wrong-" + TOKEN[::-1]):
            for args in (["status"], ["kv", "get", "traffic-split"], ["shift", "10"], ["kv", "export"]):
                r = self.cli(d, *args, token=token)
                self.assertEqual(r.returncode, 4, "%s: %r" % (args, r))
                self.assertIn("token missing or wrong", r.stderr)
                if token:
                    self.assertNotIn(token, r.out)
        # The right token, from the environment and from a file (trailing newline trimmed).
        self.assertEqual(self.status(d, token=TOKEN)["split"], 0)
        tf = self.write("token", TOKEN + "\n")
        # exit codes of docs/admin-api.md: 6 a refused write, 1 a missing key, else 0
        for args, code in ((["shift", "20", "--over", "1"], 0), (["rollback"], 0), (["status"], 0),
                           (["status", "--json"], 0), (["kv", "put", "hash-salt", "x"], 0),
                           (["kv", "get", "hash-salt", "--json"], 0), (["kv", "export"], 0),
                           (["kv", "put", "traffic-split", "500"], 6), (["kv", "delete", "nope"], 1)):
            r = self.cli(d, *args, "--token-file", tf)  # check_no_token runs on every output
            self.assertEqual(r.returncode, code, "%s: %r" % (args, r))
        r = self.cli(d, "status", "--token-file", os.path.join(self.tmp, "missing"))
        self.assertEqual(r.returncode, 1, repr(r))

    def test_nothing_listening_exit_3(self):
        url = "http://127.0.0.1:%d" % h.closed_port()
        for args in (["status"], ["shift", "10", "--over", "5"], ["rollback"], ["kv", "get", "k"], ["kv", "export"]):
            r = self.cli(None, *args, url=url, token=TOKEN)
            self.assertEqual(r.returncode, 3, "%s: %r" % (args, r))
            self.assertIn(url, r.stderr)
            self.assertIn("--admin", r.stderr)
        r = self.cli(None, "status", "--admin", url)
        self.assertEqual(r.returncode, 3, repr(r))

    def test_no_answer_within_timeout_exit_3(self):
        with h.HangServer() as hang:
            t0 = time.time()
            r = self.cli(None, "status", "--admin", hang.url(), "--timeout", "0.5")
            self.assertEqual(r.returncode, 3, repr(r))
            self.assertLess(time.time() - t0, 5)
            self.assertIn("no answer within", r.stderr)

    # -- scripts -------------------------------------------------------------

    def test_scripts_set_traffic_shift_and_update_kvs(self):
        d = self.start()
        r = self.script(d, "set-traffic-shift.sh", "35", "1")
        self.assertEqual(r.returncode, 0, repr(r))
        self.assertIn("done: split 35%", r.stdout)
        self.assertEqual(self.status(d)["split"], 35)
        r = self.script(d, "set-traffic-shift.sh", "35")
        self.assertEqual(r.returncode, 2, repr(r))
        self.assertIn("usage", r.stderr.lower())

        f = self.write("new.json", h.kvs_json({"APIGW_B2_URL": self.b1.url()}))
        r = self.script(d, "update-kvs.sh", f)
        self.assertEqual(r.returncode, 0, repr(r))
        self.assertEqual(d.read_store()["APIGW_B2_URL"], self.b1.url())
        # Default: config/kvs.json's APIGW_*_URL entries only (its split stays out).
        r = self.script(d, "update-kvs.sh")
        self.assertEqual(r.returncode, 0, repr(r))
        s = d.read_store()
        self.assertEqual(s["APIGW_B2_URL"], "http://127.0.0.1:9003")
        self.assertEqual(s["traffic-split"], "35")

    def test_script_send_test_requests(self):
        d = self.start(self.store(**{"traffic-split": "50"}))
        # 8 s: the table due at 5 s is printed at the first one-second tick from 5 s on, which
        # on a loaded machine can be 6 s or 7 s (a 6 s run could end before it)
        r = self.script(d, "send-test-requests.sh", "8", "http://127.0.0.1:%d" % d.port, timeout=60)
        self.assertEqual(r.returncode, 0, repr(r))
        self.assertRegex(r.stdout, r"\[[567]s\] requests per upstream", "a table every 5 seconds")
        final = r.stdout[r.stdout.index("total after 8s"):]
        row = r"^\s+(%s)\s+(\d+)\s+[\d.]+%%\s+(\d+)\s+[\d.]+%%$"
        rows = {name: int(total) for name, _, total in re.findall(row % r"[A-Za-z0-9-]+", final, re.M)}
        self.assertEqual(set(rows), {"A", "B1", "B2"}, final)  # 50%: both groups; all three paths
        all_total = int(re.search(r"^\s+all\s+\d+\s+(\d+)$", final, re.M).group(1))
        self.assertEqual(sum(rows.values()), all_total, final)
        served = {"A": len(self.a.requests), "B1": len(self.b1.requests), "B2": len(self.b2.requests)}
        self.assertEqual(rows, served, "the table counts what each upstream served\n" + final)
        users = {req["headers"].get("authorization", "") for u in (self.a, self.b1, self.b2) for req in u.requests}
        self.assertGreater(len(users), 50, "many distinct users")
        r = self.script(d, "send-test-requests.sh")
        self.assertEqual(r.returncode, 2, repr(r))


if __name__ == "__main__":
    unittest.main(verbosity=2)
