"""A certificate authority and a broker certificate of a local cluster's own, for its SASL_SSL listener.

Made with the ``openssl`` command line tool (OpenSSL 3), once per cluster workdir: a CA key that
never leaves ``tls/`` (mode 600), and one broker key and certificate (``subjectAltName`` 127.0.0.1
and localhost) that every node of the local cluster presents. A client trusts ``ca.pem`` and nothing
else. A real deployment gets its certificates from the mission's own PKI: only the paths change.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

_DAYS = "825"  # the longest validity clients still accept for a leaf certificate


class DevCertificates:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def ca_pem(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def broker_pem(self) -> Path:
        """The broker's key (PKCS#8, unencrypted: the file itself is 600) then its certificate."""
        return self.directory / "broker.pem"

    def ensure(self) -> None:
        if self.ca_pem.is_file() and self.broker_pem.is_file():
            return
        openssl = shutil.which("openssl")
        if openssl is None:
            raise RuntimeError("openssl is not on PATH; it makes the local cluster's TLS certificates")
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        d = self.directory
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

        def run(*args: str) -> None:
            done = subprocess.run([openssl, *args], cwd=d, capture_output=True, text=True, timeout=60)
            if done.returncode != 0:
                raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()}")

        old = os.umask(0o077)  # keys are created readable by their owner only
        try:
            run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", _DAYS,
                "-subj", "/CN=Corridor local Kafka CA")  # fmt: skip
            run("req", *ec, "-keyout", "broker.key", "-out", "broker.csr", "-subj", "/CN=localhost")
            (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
            run("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", "broker.crt", "-days", _DAYS, "-extfile", "san.ext")  # fmt: skip
            tmp = d / "broker.pem.tmp"
            tmp.write_text((d / "broker.key").read_text() + (d / "broker.crt").read_text())
            tmp.replace(self.broker_pem)
        finally:
            os.umask(old)
        for leftover in ("broker.csr", "san.ext", "ca.srl"):
            (d / leftover).unlink(missing_ok=True)
        os.chmod(self.ca_pem, 0o644)  # the one file clients get
