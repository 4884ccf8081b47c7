"""CLI subcommands that need no running daemon: check-config, bucket; serve start-up failures."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def run(*args, timeout=30, cwd=None):
    return subprocess.run([h.figshift_bin(), *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, cwd=cwd)


GOOD_SEED = {"data": [{"key": "APIGW_A_URL", "value": "http://127.0.0.1:9"}]}


class CliTest(h.FigTestCase):
    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="figshift-cli-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        with open(os.path.join(self.dir, "seed.json"), "w") as f:
            json.dump(GOOD_SEED, f)

    def good_config(self):
        return {
            "listen": [{"address": "127.0.0.1", "port": 0}],
            "admin": {"address": "127.0.0.1", "port": 0},
            "store": {"backend": "file", "path": "kvs.json", "seed": "seed.json", "reload_interval_ms": 200},
            "workers": 2,
            "timeouts": {"client_header_ms": 1000, "client_body_ms": 1000, "client_idle_ms": 1000,
                         "client_write_ms": 1000, "upstream_connect_ms": 1000, "upstream_response_ms": 1000,
                         "upstream_idle_ms": 1000, "drain_ms": 1000},
            "limits": {"header_bytes": 8192, "body_bytes": 1000000, "response_body_bytes": 1000000,
                       "max_connections": 100, "upstream_idle_per_origin": 4},
            "upstream_tls": {"verify": True},
            "debug_header": "x-figshift-upstream",
            "log": {"level": "info"},
        }

    def write(self, cfg, name="config.json"):
        p = os.path.join(self.dir, name)
        with open(p, "w") as f:
            f.write(cfg if isinstance(cfg, str) else json.dumps(cfg))
        return p

    def test_check_config_good(self):
        r = run("check-config", "--config", self.write(self.good_config()))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        minimal = {"listen": [{"address": "127.0.0.1", "port": 0}],
                   "store": {"backend": "file", "path": "kvs.json", "seed": "seed.json"}}
        r = run("check-config", "--config", self.write(minimal, "minimal.json"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_check_config_does_not_create_the_store(self):
        run("check-config", "--config", self.write(self.good_config()))
        self.assertFalse(os.path.exists(os.path.join(self.dir, "kvs.json")))

    def test_check_config_bad(self):
        def bad(mutate, field_pattern):
            cfg = self.good_config()
            mutate(cfg)
            return cfg, field_pattern

        cases = {
            "unknown top-level key": bad(lambda c: c.update(bogus_key=1), r"bogus_key"),
            "unknown nested key": bad(lambda c: c["timeouts"].update(bogus_ms=5), r"bogus_ms"),
            "unknown listen key": bad(lambda c: c["listen"][0].update(portt=1), r"portt"),
            "port is a string": bad(lambda c: c["listen"][0].update(port="abc"), r"port"),
            "port out of range": bad(lambda c: c["listen"][0].update(port=70000), r"port"),
            "negative timeout": bad(lambda c: c["timeouts"].update(client_header_ms=-1), r"client_header"),
            "timeout wrong type": bad(lambda c: c["timeouts"].update(drain_ms="soon"), r"drain"),
            "workers wrong type": bad(lambda c: c.update(workers="many"), r"workers"),
            "listen missing": bad(lambda c: c.pop("listen"), r"listen"),
            "store missing": bad(lambda c: c.pop("store"), r"store"),
            "unknown backend": bad(lambda c: c["store"].update(backend="floppy"), r"backend"),
            "verify wrong type": bad(lambda c: c["upstream_tls"].update(verify="yes"), r"verify"),
            "bad log level": bad(lambda c: c["log"].update(level="chatty"), r"level"),
            "debug_header not a header name": bad(lambda c: c.update(debug_header="x bad:\r\nheader"),
                                                  r"debug_header"),
        }
        for name, (cfg, pattern) in cases.items():
            with self.subTest(case=name):
                r = run("check-config", "--config", self.write(cfg, "bad.json"))
                out = r.stdout + r.stderr
                self.assertNotEqual(r.returncode, 0, "%s: accepted\n%s" % (name, out))
                self.assertRegex(out, re.compile(pattern), "%s: the message does not name the field" % name)

    def test_check_config_unreadable(self):
        r = run("check-config", "--config", os.path.join(self.dir, "missing.json"))
        self.assertNotEqual(r.returncode, 0)
        r = run("check-config", "--config", self.write('{"listen": [', "broken.json"))
        self.assertNotEqual(r.returncode, 0)

    def test_serve_refuses_bad_config(self):
        cfg = self.good_config()
        cfg["bogus_key"] = True
        r = run("serve", "--config", self.write(cfg), timeout=15)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("bogus_key", r.stdout + r.stderr)

    def test_serve_refuses_invalid_seed(self):
        with open(os.path.join(self.dir, "seed.json"), "w") as f:
            json.dump({"data": [{"key": "APIGW_A_URL", "value": "http://127.0.0.1:9"},
                                {"key": "traffic-split", "value": "101"}]}, f)
        r = run("serve", "--config", self.write(self.good_config()), timeout=15)
        self.assertNotEqual(r.returncode, 0, "an invalid seed must stop start-up")
        self.assertIn("traffic-split", r.stdout + r.stderr)

    def test_serve_without_store_or_seed_fails(self):
        os.remove(os.path.join(self.dir, "seed.json"))
        r = run("serve", "--config", self.write(self.good_config()), timeout=15)
        self.assertNotEqual(r.returncode, 0, "no store file and no seed: nothing to route with")
        self.assertRegex(r.stdout + r.stderr, r"seed|kvs\.json|store")

    def test_relative_paths_resolve_against_config_folder(self):
        sub = os.path.join(self.dir, "etc")
        os.makedirs(sub)
        os.makedirs(os.path.join(self.dir, "var"))
        shutil.move(os.path.join(self.dir, "seed.json"), os.path.join(sub, "seed.json"))
        cfg = self.good_config()
        cfg["store"]["path"] = "../var/kvs.json"
        a = self.upstream("A")
        with open(os.path.join(sub, "seed.json"), "w") as f:
            f.write(h.kvs_json({"APIGW_A_URL": a.url()}))
        path = os.path.join(sub, "figshift.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        # run from an unrelated working directory
        p = subprocess.Popen([h.figshift_bin(), "serve", "--config", path], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, cwd="/", stdin=subprocess.DEVNULL)
        try:
            port = None
            import time
            deadline = time.time() + h.READY_TIMEOUT
            buf = b""
            os.set_blocking(p.stderr.fileno(), False)
            while time.time() < deadline and port is None:
                chunk = p.stderr.read()
                if chunk:
                    buf += chunk
                m = h.LISTEN_RE.search(buf.decode("utf-8", "replace"))
                if m:
                    port = int(m.group(1))
                elif p.poll() is not None:
                    break
                time.sleep(0.05)
            self.assertIsNotNone(port, buf.decode("utf-8", "replace"))
            self.assertTrue(os.path.exists(os.path.join(self.dir, "var", "kvs.json")),
                            "store path not resolved against the config file's folder")
            r = h.request(port, "GET", "/x")
            self.assertEqual(r.echo["upstream"], "A")
        finally:
            p.terminate()
            try:
                rc = p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = p.wait()
            p.stdout.close()
            p.stderr.close()
        self.assertEqual(rc, 0)

    def test_bucket_subcommand(self):
        users = list(h.REFERENCE) + ["user7", "\u5f20\u4e09"]
        for user in users:
            with self.subTest(user=user):
                r = run("bucket", user)
                self.assertEqual(r.returncode, 0, r.stderr)
                nums = [int(n) for n in re.findall(r"-?\d+", r.stdout)]
                self.assertIn(h.bucket_of(user), nums, "bucket of %r: %s" % (user, r.stdout))
        r = run("bucket", "hello", "--salt", "pepper")
        self.assertIn(h.bucket_of("hello", "pepper"), [int(n) for n in re.findall(r"-?\d+", r.stdout)], r.stdout)
        # group at a split
        b = h.bucket_of("hello")  # 70
        r = run("bucket", "hello", "--split", str(b + 1))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout.lower(), r"new|migrated", r.stdout)
        r = run("bucket", "hello", "--split", str(b))
        self.assertRegex(r.stdout.lower(), r"legacy", r.stdout)

    def test_bucket_subcommand_with_10000_buckets(self):
        # docs/design.md section 1 (#17): bucket = (h + 2^31) mod 10000, the split in
        # hundredths of a point; computed here from the Java hash, not by figshift.
        for user, salt in (("hello", ""), ("polygenelubricants", ""), ("user42", "pepper"),
                           ("\u5f20\u4e09", "")):
            with self.subTest(user=user, salt=salt):
                want = (h.java_hash(salt + user) + (1 << 31)) % 10000
                r = run("bucket", user, "--salt", salt, "--buckets", "10000")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertRegex(r.stdout, r"(?m)^bucket: %d\b" % want)
                # the group turns at the split's hundredths: new just above the bucket
                above = "%d.%02d" % divmod(want + 1, 100)
                at = "%d.%02d" % divmod(want, 100)
                self.assertRegex(run("bucket", user, "--salt", salt, "--buckets", "10000",
                                     "--split", above).stdout, r"group: new")
                self.assertRegex(run("bucket", user, "--salt", salt, "--buckets", "10000",
                                     "--split", at).stdout, r"group: legacy")
        # 100 buckets keeps the sample's rule and its integer split
        r = run("bucket", "hello", "--buckets", "100")
        self.assertRegex(r.stdout, r"(?m)^bucket: 70\b")
        for args, reason in ((["--split", "0.5"], "decimals need buckets = 10000"),
                             (["--buckets", "10000", "--split", "100.01"], "at most 100"),
                             (["--buckets", "10000", "--split", "1.234"], "one or two decimals"),
                             (["--buckets", "1000"], "1000")):
            with self.subTest(args=args):
                r = run("bucket", "hello", *args)
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                self.assertIn(reason, r.stderr)
                self.assertEqual(r.stdout, "")

    # -- argument handling (it lives in main(): only the binary can show it) --

    def test_help_lists_every_subcommand(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        for sub in ("serve", "check-config", "bucket", "demo-upstreams", "shift", "rollback", "status", "kv"):
            self.assertRegex(r.stdout, r"(?m)^\s+%s\b" % re.escape(sub), "%s missing from --help" % sub)

    def test_argument_errors_exit_2_and_start_nothing(self):
        # A working directory holding a valid config/figshift.json: a command whose arguments were
        # not refused would start (serve, demo-upstreams) or check it, and create the store.
        os.makedirs(os.path.join(self.dir, "config"))
        cfg = self.good_config()
        cfg["store"]["seed"] = "../seed.json"
        self.write(cfg, os.path.join("config", "figshift.json"))
        cases = [
            [],                                   # a subcommand is required
            ["frobnicate"],                       # no such subcommand
            ["serve", "--bogus"],
            ["serve", "--config"],                # the option without its value
            ["check-config", "extra-argument"],
            ["bucket"],                           # the username is required
            ["bucket", "hello", "--split", "101"],  # README: the split is 0..100
            ["bucket", "hello", "--split", "-1"],
            ["bucket", "hello", "--split", "half"],
            ["bucket", "hello", "--salt"],
            ["demo-upstreams", "--port-a", "70000"],
            ["demo-upstreams", "--port-b1", "x"],
            ["kv", "frobnicate"],
        ]
        for args in cases:
            with self.subTest(args=args):
                r = run(*args, timeout=10, cwd=self.dir)  # a started daemon would time out here
                # docs/admin-api.md "CLI": 2 is a usage error (bad arguments or options)
                self.assertEqual(r.returncode, 2, "%s: %s" % (args, r.stdout + r.stderr))
                self.assertNotEqual(r.stderr.strip(), "", "%s: no message" % args)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "config", "kvs.json")), "a command ran")

    def test_bucket_arguments_in_any_order_and_split_bounds(self):
        b = h.bucket_of("hello", "pepper")
        first = run("bucket", "hello", "--salt", "pepper", "--split", "100")
        self.assertEqual(first.returncode, 0, first.stderr)
        self.assertIn(b, [int(n) for n in re.findall(r"-?\d+", first.stdout)], first.stdout)
        for args in (["bucket", "--split", "100", "hello", "--salt", "pepper"],
                     ["bucket", "--salt", "pepper", "--split", "100", "hello"]):
            r = run(*args)
            self.assertEqual((r.returncode, r.stdout), (0, first.stdout), args)
        # README: the split is 0..100; every user is new at 100 and legacy at 0
        self.assertRegex(first.stdout.lower(), r"new|migrated")
        r = run("bucket", "hello", "--salt", "pepper", "--split", "0")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout.lower(), r"legacy")
        # a username that looks like an option, after "--"
        r = run("bucket", "--", "--not-an-option")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(h.bucket_of("--not-an-option"), [int(n) for n in re.findall(r"-?\d+", r.stdout)], r.stdout)


if __name__ == "__main__":
    unittest.main()
