// Checks that the installed playwright-core accepts the oldest Node.js major the
// README promises (Debian 12's nodejs, 18). playwright-core states its minimum in
// index.js as `minimumMajorNodeVersion = N`; a version that no longer says so is
// refused too, so an upgrade is looked at by a person instead of passing unread.
import fs from "node:fs";

const OLDEST_SUPPORTED_NODE = 18; // README: "Minimum versions"
const dir = new URL("./node_modules/playwright-core/", import.meta.url);
const { version } = JSON.parse(fs.readFileSync(new URL("package.json", dir), "utf8"));
const index = fs.readFileSync(new URL("index.js", dir), "utf8");
const match = index.match(/minimumMajorNodeVersion\s*=\s*(\d+)/);
if (!match) {
  console.error(`playwright-core ${version}: no minimumMajorNodeVersion in index.js; ` +
    `check by hand that it runs on Node ${OLDEST_SUPPORTED_NODE} before pinning it`);
  process.exit(1);
}
const required = Number(match[1]);
if (required > OLDEST_SUPPORTED_NODE) {
  console.error(`playwright-core ${version} requires Node ${required}, but figshift supports ` +
    `Node ${OLDEST_SUPPORTED_NODE} (Debian 12); pin an older playwright-core in package.json`);
  process.exit(1);
}
console.log(`playwright-core ${version} (needs Node >= ${required}) on Node ${process.versions.node}`);
