"""The soak at its CI length: scripts/soak.sh 60 (mixed traffic to every upstream,
a failing and a refused one included) must report SOAK PASS: RSS growth under
10 % after warm-up, no fd growth, no failure on a healthy route, daemon alive."""

import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

SECONDS = int(os.environ.get("FIGSHIFT_SOAK_SECONDS", "60"))


class SoakTest(unittest.TestCase):
    def test_soak(self):
        env = dict(os.environ, FIGSHIFT_BIN=h.figshift_bin())
        p = subprocess.run(["bash", os.path.join(h.REPO, "scripts", "soak.sh"), str(SECONDS)], env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=SECONDS + 90)
        out = p.stdout + p.stderr
        sys.stderr.write("\n" + out)
        self.assertEqual(p.returncode, 0, "soak.sh failed:\n" + out)
        self.assertIn("SOAK PASS", out)
        m = re.search(r"soak: (\d+) requests in", out)
        self.assertIsNotNone(m, out)
        self.assertGreater(int(m.group(1)), 1000, "the soak sent too little traffic")
        m = re.search(r"RSS (\d+) kB -> (\d+) kB .*fds (\d+) -> (\d+)", out)
        self.assertIsNotNone(m, out)
        rss0, rss1, fd0, fd1 = map(int, m.groups())
        if "AddressSanitizer build" not in out:  # ASan's quarantine keeps freed memory resident
            self.assertLessEqual(rss1, rss0 * 1.10)
        self.assertLessEqual(fd1, fd0)
        for kind in ("200 from A", "200 from B1", "200 from B2", "failing 502"):
            self.assertIn(kind, out, "no %r in the soak's traffic" % kind)


if __name__ == "__main__":
    unittest.main()
