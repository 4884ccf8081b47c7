#!/usr/bin/env node
// The user and bucket of docs/design.md §1 as the original CloudFront function
// computed them in JavaScript, plus a deterministic generator of
// Authorization header values. For every generated header it writes one JSON
// line {"authorization", "salt", "bucket", "units"} to the file named by
// argv[2]; differential_test.cpp checks the C++ rule against them.
//
// Usage: node reference.js <output.jsonl> [cases] [seed]
// No npm packages: Node's own Buffer is the decoder being matched.
'use strict';

const fs = require('fs');

// ---------------------------------------------------------------------------
// The reference rule.

// RFC 4648 alphabet; padding optional, but when present exactly right.
const STRICT_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2,3})?$/;

// The username as a JS string (UTF-16), or null when the request is anonymous.
function basicAuthUsername(authorization) {
  if (typeof authorization !== 'string') return null;
  // A field value has no surrounding whitespace (RFC 9110 §5.5).
  const value = authorization.replace(/^[ \t]+|[ \t]+$/g, '');
  // credentials = auth-scheme [ 1*SP token68 ]; the scheme is case-insensitive.
  const m = /^basic +([^]*)$/i.exec(value);
  if (m === null) return null;
  const token = m[1];
  if (!STRICT_BASE64.test(token)) return null;
  // Buffer's utf8 decoding is the WHATWG decoder: U+FFFD per maximal subpart.
  const decoded = Buffer.from(token, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  return decoded.slice(0, colon);
}

// Java String.hashCode over UTF-16 code units, 32-bit wrap-around.
function javaHashCode(s) {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (31 * h + s.charCodeAt(i)) | 0;
  return h;
}

function bucketOf(username, salt) {
  return (javaHashCode(salt + username) + 2 ** 31) % 100;
}

// ---------------------------------------------------------------------------
// Deterministic generator.

// mulberry32: small, seedable, identical on every platform.
function mulberry32(seed) {
  let a = seed >>> 0;
  return function next() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function makeGenerator(seed) {
  const random = mulberry32(seed);
  const int = (lo, hi) => lo + Math.floor(random() * (hi - lo + 1)); // inclusive
  const pick = (items) => items[int(0, items.length - 1)];
  const chance = (p) => random() < p;

  function codePoint(kind) {
    switch (kind) {
      case 'ascii': {
        let c;
        do c = int(0x20, 0x7e); while (c === 0x3a); // ':' would end the username
        return c;
      }
      case 'latin': return int(0x80, 0x7ff);
      case 'bmp': {
        let c;
        do c = int(0x800, 0xffff); while (c >= 0xd800 && c <= 0xdfff);
        return c;
      }
      case 'astral': return int(0x10000, 0x10ffff);
      default: return codePoint(pick(['ascii', 'latin', 'bmp', 'astral']));
    }
  }

  function text(kind, maxLength) {
    const n = int(0, maxLength);
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCodePoint(codePoint(kind));
    return s;
  }

  // Byte strings that are not valid UTF-8, or are on its edges.
  const trickyBytes = [
    [0xc0, 0x80], [0xc1, 0xbf], [0xe0, 0x80, 0xaf], [0xe0, 0x9f, 0xbf], [0xf0, 0x80, 0x80, 0xaf],
    [0xf0, 0x8f, 0xbf, 0xbf], [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf], [0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80],
    [0xf4, 0x90], [0xf4, 0x90, 0x80, 0x80], [0xf4, 0x8f, 0xbf, 0xbf], [0xf5, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80],
    [0xfe], [0xff], [0x80], [0xbf], [0x80, 0xbf, 0x80], [0xc3], [0xe2, 0x82], [0xf0, 0x9f, 0x98],
    [0xf0, 0x9f], [0xe2, 0x82, 0x41], [0xc3, 0xc3, 0xab], [0xef, 0xbf, 0xbd], [0xef, 0xbb, 0xbf],
    [0xe0, 0xa0, 0x80], [0xed, 0x9f, 0xbf], [0xee, 0x80, 0x80], [0xc2, 0x80], [0xdf, 0xbf], [0x00],
  ];

  function invalidUtf8Bytes() {
    const parts = [];
    const n = int(1, 6);
    for (let i = 0; i < n; i++) {
      switch (int(0, 3)) {
        case 0: parts.push(Buffer.from(pick(trickyBytes))); break;
        case 1: parts.push(Buffer.from(text('any', 2), 'utf8')); break;
        default: {
          // Random high bytes: mostly broken sequences.
          const b = Buffer.alloc(int(1, 6));
          for (let j = 0; j < b.length; j++) b[j] = chance(0.8) ? int(0x80, 0xff) : int(0x00, 0x7f);
          parts.push(b);
        }
      }
    }
    return Buffer.concat(parts);
  }

  function usernameBytes() {
    switch (int(0, 6)) {
      case 0: return Buffer.from(text('ascii', 16), 'utf8');
      case 1: return Buffer.from(text('latin', 8), 'utf8');
      case 2: return Buffer.from(text('bmp', 8), 'utf8');
      case 3: return Buffer.from(text('astral', 6), 'utf8');
      case 4: return Buffer.from(text('any', 12), 'utf8');
      default: return invalidUtf8Bytes(); // may hold ':' by chance, which is fine
    }
  }

  function passwordBytes() {
    if (chance(0.1)) return Buffer.alloc(0);
    const s = text(chance(0.7) ? 'ascii' : 'any', 12);
    return Buffer.from(chance(0.3) ? s + ':' + s : s, 'utf8');
  }

  function credentials() {
    const user = usernameBytes();
    if (chance(0.08)) return user.filter((b) => b !== 0x3a); // no colon at all
    return Buffer.concat([user, Buffer.from(':'), passwordBytes()]);
  }

  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

  // A base64 token of `bytes`, correct or broken in one of many ways.
  function token(bytes) {
    const padded = bytes.toString('base64');
    const unpadded = padded.replace(/=+$/, '');
    switch (int(0, 24)) {
      case 0: return unpadded;
      case 1: return unpadded + '=';             // wrong unless exactly one was due
      case 2: return padded + '=';               // one too many
      case 3: return unpadded + '==';
      case 4: {                                  // a character outside RFC 4648
        const at = int(0, padded.length);
        return padded.slice(0, at) + pick(['-', '_', '.', '!', '~', '*', '%', ' ', '\t', '"']) + padded.slice(at);
      }
      case 5: {                                  // '=' in the middle
        const at = int(0, unpadded.length);
        return unpadded.slice(0, at) + '=' + unpadded.slice(at);
      }
      case 6: return unpadded.length % 4 === 0 ? unpadded + pick(alphabet) : unpadded.slice(0, -1);
      case 7: {                                  // non-zero bits in the last character
        if (unpadded.length % 4 === 0 || unpadded.length === 0) return padded;
        const last = alphabet.indexOf(unpadded[unpadded.length - 1]);
        const flipped = alphabet[last ^ int(1, unpadded.length % 4 === 2 ? 15 : 3)];
        return unpadded.slice(0, -1) + flipped + padded.slice(unpadded.length);
      }
      case 8: return padded.replace(/\+/g, '-').replace(/\//g, '_'); // base64url
      case 9: return padded + pick([' ', '  ', '\t', ' \t ']);        // trailing whitespace
      default: return padded;
    }
  }

  function scheme() {
    if (chance(0.75)) return 'Basic';
    return pick(['basic', 'BASIC', 'bAsIc', 'BaSiC', 'Bearer', 'Digest', 'Basi', 'Basicx', 'Negotiate', 'Basic:', 'xBasic']);
  }

  function separator() {
    if (chance(0.7)) return ' ';
    return pick(['  ', '   ', '     ', '\t', ' \t', '\t ', '', ' \t ']);
  }

  function leading() {
    return chance(0.9) ? '' : pick([' ', '\t', '  ', ' \t']);
  }

  function special() {
    return pick([
      '', 'Basic', 'Basic ', 'Basic  ', 'basic', ' ', 'Bearer x', 'Bearer', 'Basic =', 'Basic ==',
      'Basic ====', 'Basic A', 'Basic AA', 'Basic AAA', 'Basic AAAA', 'Basic Og==', 'Basic Og', 'Basic Og=',
      'Basic OnB3', 'Basic dXNlcg==', 'Basic dXNlcjpwdw==', 'Basic dXNlcjpwdx==', 'Basic dXNlcjp=',
      'Basic\tdXNlcjpwdw==', 'Basic dXNlcjpwdw', 'Basic dXNlcjpwd', 'Basic dXNlcjpwdw=', 'Basic dXNlcjpwdw===',
      'Basic,dXNlcjpwdw==', 'Basic  dXNlcjpwdw== ', 'Basic dXNl cjpwdw==',
    ]);
  }

  const salts = ['', '', '', '', 'v2', 'salt-', 'Zo\u00eb', '\u{1F600}', 'x:y', '2024-06 reshuffle', '\u00e9t\u00e9'];

  return function nextCase() {
    const salt = chance(0.25) ? pick(salts.slice(4)) : '';
    let authorization;
    if (chance(0.05)) {
      authorization = special();
    } else {
      authorization = leading() + scheme() + separator() + token(credentials()) + (chance(0.05) ? leading() : '');
    }
    return { authorization, salt };
  };
}

// ---------------------------------------------------------------------------

function main() {
  const output = process.argv[2];
  if (!output) {
    process.stderr.write('usage: node reference.js <output.jsonl> [cases] [seed]\n');
    process.exit(2);
  }
  const count = Number(process.argv[3] || 10000);
  const seed = Number(process.argv[4] || 0x5eed);

  // The reference values of docs/design.md §1 first: if the reference itself
  // drifted, everything below would be worthless.
  const table = { hello: 70, '': 48, Aa: 60, BB: 60, polygenelubricants: 0, 'Zo\u00eb': 14, '\u{1F600}': 47, user42: 41 };
  for (const [name, bucket] of Object.entries(table)) {
    if (bucketOf(name, '') !== bucket) throw new Error(`reference drifted: ${name} -> ${bucketOf(name, '')}`);
  }

  const nextCase = makeGenerator(seed);
  const fixed = Object.keys(table).map((name) => ({
    authorization: 'Basic ' + Buffer.from(name + ':pw', 'utf8').toString('base64'),
    salt: '',
  }));
  const lines = [];
  let anonymous = 0;
  for (let i = 0; i < count; i++) {
    const c = i < fixed.length ? fixed[i] : nextCase();
    if (/[^\x20-\x7e\t]/.test(c.authorization)) throw new Error('generated a non-ASCII header value');
    const username = basicAuthUsername(c.authorization);
    const record = { authorization: c.authorization, salt: c.salt, bucket: null };
    if (username === null) {
      anonymous++;
    } else {
      record.bucket = bucketOf(username, c.salt);
      record.units = Array.from({ length: username.length }, (_, k) => username.charCodeAt(k));
    }
    lines.push(JSON.stringify(record));
  }
  fs.writeFileSync(output, lines.join('\n') + '\n');
  process.stdout.write(`${count} cases (${count - anonymous} users, ${anonymous} anonymous) -> ${output}\n`);
}

main();
