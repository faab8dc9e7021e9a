"""`python -m lordi.bench.smtp`: alert e-mail through one reused SMTP connection
(collector/notify/smtp.py) against the former path (apprise, a connection and a TLS
context per e-mail), on a real SMTP server (aiosmtpd), plain and with STARTTLS.

Prints JSON: per path and TLS mode, wall and CPU milliseconds per e-mail of this
process (the collector's side; the server's own work is not counted).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from collector.notify import channels
from collector.notify.settings import SmtpSettings
from collector.notify.smtp import SmtpSender
from lordi.pki import make_ca, make_server
from lordi.smtp import running_smtp

SUBJECT = "[Lordi 0340001A] Nouvelle alerte : batterie usée — ordinateur dev-1"
BODY = "Batterie à remplacer : santé 52 % (seuil 60 %).\n" * 20

Send = Callable[[SmtpSettings, Sequence[str], str, str], str | None]


def _run(send: Send, smtp: SmtpSettings, mails: int) -> dict[str, float]:
    failures = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for n in range(mails):
        failures += send(smtp, [f"tech-{n}@lycee.example.org"], SUBJECT, BODY) is not None
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "mails": mails,
        "failed": failures,
        "wall_ms_per_mail": round(wall * 1000 / mails, 3),
        "cpu_ms_per_mail": round(cpu * 1000 / mails, 3),
    }


def measure(mails: int, root: Path) -> dict[str, object]:
    ca_key, ca, key, cert = (root / n for n in ("ca.key", "ca.crt", "relay.key", "relay.crt"))
    make_ca(ca_key, ca, "Bench relay CA")
    make_server(ca_key, ca, key, cert, ["127.0.0.1", "localhost"])
    out: dict[str, object] = {"mails_per_case": mails}
    for mode, tls in (("plain", None), ("starttls", (cert, key))):
        with running_smtp(root / f"smtp-{mode}", tls=tls) as server:
            smtp = SmtpSettings(
                port=server.port,
                tls="starttls" if tls else "none",
                ca_file=ca if tls else None,
            )
            pooled = SmtpSender()
            out[f"reused_{mode}"] = _run(pooled.send, smtp, mails) | {"connections": pooled.opened}
            pooled.close()
            if tls is None:  # apprise's STARTTLS checks the system trust store only
                out[f"apprise_{mode}"] = _run(channels.send_email_apprise, smtp, mails)
            received = len(server.wait_for(mails * (1 if tls else 2), 30))
            out[f"received_{mode}"] = received
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lordi.bench.smtp", description=__doc__)
    parser.add_argument("--mails", type=int, default=300, help="e-mails per case")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lordi-bench-smtp-") as tmp:
        result = measure(args.mails, Path(tmp))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
