"""Security findings 6 and 7 against the real daemon.

6. Control characters (CR, LF, NUL, ESC, ...) are refused in every store key and
   value, and route prefixes and replacements hold URL path characters only: a
   route such as `B1 /v2\\r\\nX-Injected:yes\\r\\nX-Pad:` used to be accepted, and
   the upstream then received a split request line.
7. The store file's temp file does not follow a symlink planted at its old,
   predictable name; a new store file is 0600 (an existing one keeps its mode);
   an admin token file readable by group or others is warned about.
"""

import json
import os
import re
import stat
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

REFUSAL_LOG = r"warn|error|invalid|refus|reject|fail"
CONTROL_BYTES = [bytes([b]) for b in range(0x20)] + [b"\x7f"]


def kv_path(key: str) -> str:
    return "/admin/kv/" + urllib.parse.quote(key, safe="")


class StoreHardeningTest(h.UpstreamsMixin, h.FigTestCase):
    def setUp(self):
        super().setUp()
        self.seed = self.migration_store(100)

    def file_bytes(self, d):
        with open(d.store_path, "rb") as f:
            return f.read()

    def assertRefused(self, d, r, key_shown, what=""):
        """400 with a JSON error naming the key, no raw control byte, and nothing changed."""
        self.assertEqual(r.status, 400, "%s: %r" % (what, r))
        j = r.json
        self.assertIsInstance(j, dict, "%s: %r" % (what, r))
        message = j.get("error", "")
        self.assertIn(key_shown, message, what)
        self.assertFalse(re.search(r"[\x00-\x1f\x7f]", message), "%s: raw control byte in %r" % (what, message))

    # -- finding 6 -----------------------------------------------------------

    def test_the_reported_crlf_route_is_refused_and_nothing_is_forwarded(self):
        d = self.daemon(self.seed)
        before = self.file_bytes(d)
        etag = d.admin_request("GET", "/admin/kv").headers.get("etag")
        value = b"B1 /v2\r\nX-Injected:yes\r\nX-Pad:"
        r = d.admin_request("PUT", kv_path("route:/crlf"), body=value)
        self.assertRefused(d, r, "route:/crlf", "PUT")
        self.assertIn("\\x0d", r.json["error"])
        # the same through a batch, together with a valid put: the whole batch is refused
        batch = {"puts": [{"key": "traffic-split", "value": "0"},
                          {"key": "route:/crlf", "value": value.decode()}]}
        r = d.admin_request("POST", "/admin/kv", {"Content-Type": "application/json"}, json.dumps(batch).encode())
        self.assertRefused(d, r, "route:/crlf", "batch")
        # ... and as a prefix
        r = d.admin_request("PUT", kv_path("route:/a\r\nX-Injected:yes"), body=b"B1")
        self.assertRefused(d, r, "route:/a\\x0d\\x0aX-Injected:yes", "prefix")
        self.assertEqual(self.file_bytes(d), before, "a refused write changed the store file")
        self.assertEqual(d.admin_request("GET", "/admin/kv").headers.get("etag"), etag)
        # what is served is still the old version, and no upstream ever saw the header
        r = d.get("/crlf/x", user="hello")
        self.assertRoutedTo(r, "A", "/crlf/x")
        self.assertRoutedTo(d.get("/orders/1", user="hello"), "B1", "/v2/orders/1")
        for u in (self.a, self.b1):
            for req in u.requests:
                self.assertNotIn("x-injected", req["headers"])

    def test_redirect_mode_emits_no_injected_header(self):
        d = self.daemon(dict(self.seed, mode="redirect"))
        r = d.admin_request("PUT", kv_path("route:/crlf"), body=b"B1 /v2\r\nX-Injected:yes\r\nX-Pad:")
        self.assertRefused(d, r, "route:/crlf")
        r = d.get("/crlf/x", user="hello")  # a migrated user (bucket 70, split 100)
        self.assertEqual(r.status, 302, r)
        self.assertNotIn("x-injected", r.headers)
        self.assertNotIn("x-pad", r.headers)
        self.assertEqual(r.headers.get("location"), self.a.url() + "/crlf/x")

    def test_control_bytes_are_refused_in_every_key_and_value(self):
        d = self.daemon(self.seed)
        before = self.file_bytes(d)
        for b in CONTROL_BYTES:
            shown = "\\x%02x" % b[0]
            cases = [
                ("hash-salt", b"salt" + b + b"x", "hash-salt"),
                ("route:/orders", b"B1 /v2" + b + b"orders", "route:/orders"),
                ("APIGW_B2_URL", b"http://127.0.0.1:1/prod" + b, "APIGW_B2_URL"),
                ("traffic-ramp", b'{"from":0,"to":5,' + b + b'"start_ms":1,"duration_ms":1000}', "traffic-ramp"),
                ("route:/o" + b.decode() + "x", b"B1", "route:/o" + shown + "x"),
            ]
            for key, value, key_shown in cases:
                with self.subTest(byte=shown, key=key):
                    r = d.admin_request("PUT", kv_path(key), body=value)
                    self.assertRefused(d, r, key_shown, "%s in %s" % (shown, key))
        self.assertEqual(self.file_bytes(d), before, "a refused write changed the store file")

    def test_terminal_escape_in_the_salt_is_refused_naming_it(self):
        d = self.daemon(self.seed)
        r = d.admin_request("PUT", kv_path("hash-salt"), body=b"\x1b[2J\x1b]0;owned\x07")
        self.assertRefused(d, r, "hash-salt")
        self.assertIn("control character", r.json["error"])
        self.assertIn("\\x1b", r.json["error"])
        self.assertNotIn("hash-salt", d.read_store())

    def test_route_characters_outside_a_url_path_are_refused(self):
        d = self.daemon(self.seed)
        for value in ("B1 /v2<script>", "B1 /v2 x", 'B1 /v2"', "B1 /a%zz", "B1 /a%2", "B1 v2"):
            with self.subTest(value=value):
                r = d.admin_request("PUT", kv_path("route:/x"), body=value.encode())
                self.assertRefused(d, r, "route:/x", value)
        for key in ("route:/a|b", "route:/a%", "route:/a{b}", "route:/a\\b"):
            with self.subTest(key=key):
                r = d.admin_request("PUT", kv_path(key), body=b"B1")
                self.assertRefused(d, r, key, key)
        # escapes and sub-delims are path characters
        for key, value in (("route:/a%2Fb", "B1 /v2/%2f"), ("route:/s;v=1,(x)*+$&'!:@~", "B1 /v2/%7E;p=1")):
            r = d.admin_request("PUT", kv_path(key), body=value.encode())
            self.assertEqual(r.status, 200, r)
            self.assertEqual(d.read_store()[key], value)
        r = d.get("/s;v=1,(x)*+$&'!:@~/7", user="hello")
        self.assertRoutedTo(r, "B1", "/v2/%7E;p=1/7")

    def test_hand_edited_file_with_crlf_is_refused(self):
        d = self.daemon(self.seed)
        mark = len(d.log_lines())
        d.write_store(dict(self.seed, **{"route:/orders": "B1 /v2\r\nX-Injected:yes\r\nX-Pad:",
                                          "traffic-split": "0"}))
        line = d.wait_for_log(r"(%s).*route:/orders" % REFUSAL_LOG, timeout=3.0, start=mark)
        self.assertIsNotNone(line, "the refused reload was not logged")
        self.assertIn("\\x0d", line)
        self.assertFalse(re.search(r"[\x00-\x08\x0a-\x1f\x7f]", line), repr(line))
        for _ in range(5):  # still split 100, the old route
            self.assertRoutedTo(d.get("/orders/1", user="hello"), "B1", "/v2/orders/1")
            time.sleep(0.05)

    # -- finding 7 -----------------------------------------------------------

    def test_symlink_at_the_old_temp_name_is_not_followed(self):
        d = self.daemon(self.seed)
        victim = os.path.join(d.dir, "victim.txt")
        with open(victim, "w") as f:
            f.write("precious\n")
        # the name the daemon used to write to: .kvs.json.tmp.<pid>
        planted = os.path.join(d.dir, ".kvs.json.tmp.%d" % d.proc.pid)
        os.symlink(victim, planted)
        dangling_target = os.path.join(d.dir, "created-through-a-link")
        for i, split in enumerate(("40", "41")):
            r = d.admin_request("PUT", kv_path("traffic-split"), body=split.encode())
            self.assertEqual(r.status, 200, r)
            with open(victim) as f:
                self.assertEqual(f.read(), "precious\n", "the write went through the planted symlink")
            self.assertFalse(os.path.islink(d.store_path), "the store file became the planted symlink")
            self.assertEqual(d.read_store()["traffic-split"], split)
            if i == 0:  # then a dangling link: its target must not be created
                os.unlink(planted)
                os.symlink(dangling_target, planted)
        self.assertFalse(os.path.exists(dangling_target))

    def test_new_store_file_is_0600(self):
        d = self.daemon(self.seed)
        self.assertEqual(stat.S_IMODE(os.stat(d.store_path).st_mode), 0o600, "store file created from the seed")
        r = d.admin_request("PUT", kv_path("traffic-split"), body=b"10")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(stat.S_IMODE(os.stat(d.store_path).st_mode), 0o600, "store file after a write")
        leftovers = [n for n in os.listdir(d.dir) if n.startswith(".kvs.json.tmp")]
        self.assertEqual(leftovers, [])

    def test_existing_store_file_keeps_its_mode(self):
        d = h.Daemon(self.seed)
        d.write_store(self.seed)
        os.chmod(d.store_path, 0o640)
        with d:
            r = d.admin_request("PUT", kv_path("traffic-split"), body=b"10")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(stat.S_IMODE(os.stat(d.store_path).st_mode), 0o640)
            self.assertEqual(d.read_store()["traffic-split"], "10")

    def token_daemon(self, mode):
        token = "tok-%d-never-in-a-log" % os.getpid()
        d = h.Daemon(self.seed, {"admin": {"token_file": "admin.token"}})
        path = os.path.join(d.dir, "admin.token")
        with open(path, "w") as f:
            f.write(token + "\n")
        os.chmod(path, mode)
        d.start()
        self.addCleanup(self._stop_daemon, d)
        # the token works (the file was read)
        r = d.admin_request("GET", "/admin/status", {"Authorization": "Bearer " + token})
        self.assertEqual(r.status, 200, r)
        return d, path, token

    def all_output(self, d):
        with d._lines_lock:
            return list(d.lines) + list(d.stdout_lines)

    def test_token_file_readable_by_others_is_warned_about(self):
        for mode in (0o644, 0o640, 0o604):
            with self.subTest(mode=oct(mode)):
                d, path, token = self.token_daemon(mode)
                line = h.eventually(lambda: next((x for x in self.all_output(d) if "chmod 600" in x), None),
                                    timeout=3.0, message="token file warning")
                self.assertIn(path, line)
                self.assertRegex(line, r"(?i)warn")
                for x in self.all_output(d):
                    self.assertNotIn(token, x)
                d.stop()

    def test_owner_only_token_file_is_not_warned_about(self):
        for mode in (0o600, 0o400):
            with self.subTest(mode=oct(mode)):
                d, path, token = self.token_daemon(mode)
                time.sleep(0.3)
                for x in self.all_output(d):
                    self.assertNotIn("chmod 600", x)
                    self.assertNotIn(token, x)
                d.stop()


if __name__ == "__main__":
    import unittest
    unittest.main(verbosity=2)
