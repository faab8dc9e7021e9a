"""The broker's private certificate authority and server certificate, made with the
`openssl` command (Debian's base system has it; no Python dependency for a job done
once per server).

EC P-256 keys (fast TLS handshakes for 200,000 laptops reconnecting in the morning).
The certificates carry what strict verifiers ask for (Python 3.13 turns on
VERIFY_X509_STRICT): a critical CA basic constraint, key usages, subject and
authority key identifiers, and the server's names as subjectAltName only.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

CA_DAYS = 3650
SERVER_DAYS = 825  # the longest validity clients commonly accept for a server certificate
RENEW_BEFORE_S = 30 * 86400


class PkiError(Exception):
    """openssl missing or refusing; the message names the file and the fix."""


def _openssl(*argv: str, cwd: Path | None = None) -> str:
    exe = shutil.which("openssl")
    if exe is None:
        raise PkiError("the openssl command is missing: apt-get install openssl")
    done = subprocess.run(
        [exe, *argv], cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
        check=False,
    )
    if done.returncode != 0:
        raise PkiError(f"openssl {argv[0]} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def san(names: list[str]) -> str:
    """`DNS:a,IP:127.0.0.1,...` for openssl's subjectAltName."""
    parts = []
    for name in names:
        try:
            ipaddress.ip_address(name)
            parts.append(f"IP:{name}")
        except ValueError:
            parts.append(f"DNS:{name}")
    return ",".join(parts)


def make_ca(key: Path, cert: Path, common_name: str = "Lordi broker CA") -> None:
    """A new CA key (written first, mode 0600) and its self-signed certificate."""
    with tempfile.TemporaryDirectory() as tmp:
        ext = Path(tmp) / "ca.ext"
        ext.write_text(
            "[req]\ndistinguished_name = dn\n[dn]\n[v3_ca]\n"
            "basicConstraints = critical, CA:TRUE, pathlen:0\n"
            "keyUsage = critical, keyCertSign, cRLSign\n"
            "subjectKeyIdentifier = hash\n"
        )
        _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key))
        key.chmod(0o600)
        _openssl(
            "req", "-x509", "-new", "-key", str(key), "-sha256", "-days", str(CA_DAYS),
            "-subj", f"/CN={common_name}", "-config", str(ext), "-extensions", "v3_ca",
            "-out", str(cert),
        )


def make_server(ca_key: Path, ca_cert: Path, key: Path, cert: Path, names: list[str]) -> None:
    """A new server key and certificate for `names`, signed by the CA."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ext = folder / "server.ext"
        ext.write_text(
            "basicConstraints = critical, CA:FALSE\n"
            "keyUsage = critical, digitalSignature, keyEncipherment\n"
            "extendedKeyUsage = serverAuth\n"
            "subjectKeyIdentifier = hash\n"
            "authorityKeyIdentifier = keyid, issuer\n"
            f"subjectAltName = {san(names)}\n"
        )
        new_key = folder / "server.key"
        _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(new_key))
        _openssl(
            "req", "-new", "-key", str(new_key), "-subj", f"/CN={names[0]}",
            "-out", str(folder / "server.csr"),
        )
        _openssl(
            "x509", "-req", "-in", str(folder / "server.csr"), "-CA", str(ca_cert),
            "-CAkey", str(ca_key), "-CAcreateserial", "-CAserial", str(folder / "ca.srl"),
            "-sha256", "-days", str(SERVER_DAYS), "-extfile", str(ext), "-out", str(cert),
        )
        key.write_bytes(new_key.read_bytes())


def cert_names(cert: Path) -> list[str]:
    """The subjectAltName entries of a certificate, as `make_server` takes them."""
    out = _openssl("x509", "-in", str(cert), "-noout", "-ext", "subjectAltName")
    return [value for _kind, value in re.findall(r"(DNS|IP Address):([^,\s]+)", out)]


def still_valid(cert: Path, ca_cert: Path) -> str | None:
    """None when `cert` is signed by `ca_cert` and valid for 30 more days, else why not."""
    exe = shutil.which("openssl")
    if exe is None:
        raise PkiError("the openssl command is missing: apt-get install openssl")
    verify = subprocess.run(
        [exe, "verify", "-CAfile", str(ca_cert), str(cert)],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False,
    )
    if verify.returncode != 0:
        return f"not signed by {ca_cert}"
    ends = subprocess.run(
        [exe, "x509", "-in", str(cert), "-noout", "-checkend", str(RENEW_BEFORE_S)],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False,
    )
    if ends.returncode != 0:
        return "expires within 30 days"
    return None
