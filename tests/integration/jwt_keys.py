"""Test keys and JWTs for user-key jwt (#17), made with the openssl CLI and the
Python standard library only (no JWT library): HS256 with hmac, RS256, PS256
and ES256 with `openssl dgst -sign`, JWKs from the public keys' numbers."""

import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import tempfile


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _run(*args, data: bytes | None = None) -> bytes:
    return subprocess.run(["openssl", *args], input=data, check=True, capture_output=True).stdout


def _der_ecdsa_to_raw(der: bytes, size: int) -> bytes:
    """ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } -> r || s (RFC 7518 §3.4)."""
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        value = der[i + 2:i + 2 + n].lstrip(b"\x00")
        out += value.rjust(size, b"\x00")
        i += 2 + n
    return out


class Keys:
    """An HMAC secret, an RSA 2048 key and an EC P-256 key in a temp dir."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="figshift-jwt-")
        self.secret = os.urandom(32)
        self.rsa = os.path.join(self.dir, "rsa.pem")
        self.ec = os.path.join(self.dir, "ec.pem")
        _run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", self.rsa)
        _run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", self.ec)
        self.rsa_public_pem = _run("pkey", "-in", self.rsa, "-pubout")

    def rsa_jwk(self, kid="r1") -> dict:
        modulus = _run("rsa", "-in", self.rsa, "-noout", "-modulus").decode().strip().split("=", 1)[1]
        text = _run("rsa", "-in", self.rsa, "-noout", "-text").decode()
        exponent = int(re.search(r"publicExponent: (\d+)", text).group(1))
        e = exponent.to_bytes((exponent.bit_length() + 7) // 8, "big")
        return {"kty": "RSA", "kid": kid, "n": b64url(bytes.fromhex(modulus)), "e": b64url(e)}

    def ec_jwk(self, kid="e1") -> dict:
        der = _run("pkey", "-in", self.ec, "-pubout", "-outform", "DER")
        point = der[-65:]  # the SubjectPublicKeyInfo ends with the uncompressed point 04 || x || y
        assert point[0] == 4
        return {"kty": "EC", "kid": kid, "crv": "P-256", "x": b64url(point[1:33]), "y": b64url(point[33:])}

    def oct_jwk(self, kid="h1", secret: bytes | None = None) -> dict:
        return {"kty": "oct", "kid": kid, "k": b64url(secret or self.secret)}

    def jwks(self, *keys) -> str:
        return json.dumps({"keys": list(keys) or [self.oct_jwk(), self.rsa_jwk(), self.ec_jwk()]})

    def sign(self, alg: str, signed: bytes, secret: bytes | None = None) -> bytes:
        if alg == "HS256":
            return hmac.new(secret or self.secret, signed, hashlib.sha256).digest()
        if alg == "RS256":
            return _run("dgst", "-sha256", "-sign", self.rsa, data=signed)
        if alg == "PS256":
            return _run("dgst", "-sha256", "-sign", self.rsa, "-sigopt", "rsa_padding_mode:pss",
                        "-sigopt", "rsa_pss_saltlen:digest", data=signed)
        if alg == "ES256":
            return _der_ecdsa_to_raw(_run("dgst", "-sha256", "-sign", self.ec, data=signed), 32)
        raise ValueError(alg)

    def token(self, claims: dict, alg: str = "HS256", kid: str | None = None, header: dict | None = None,
              secret: bytes | None = None) -> str:
        h = {"alg": alg, "typ": "JWT"}
        if kid is not None:
            h["kid"] = kid
        h.update(header or {})
        signed = (b64url(json.dumps(h).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
        return signed.decode() + "." + b64url(self.sign(alg, signed, secret) if alg != "none" else b"")
