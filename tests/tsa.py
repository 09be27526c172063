"""A real local RFC 3161 time-stamping authority for tests (never a mock).

``make_authority`` makes a root CA, an intermediate CA and a TSA certificate
(critical extendedKeyUsage timeStamping) with the ``openssl`` binary, and an
``openssl ts`` configuration that signs with it; ``LocalTsa`` serves that
authority over HTTP from a child process (``tests/tsa_server.py``) that
answers each ``application/timestamp-query`` with ``openssl ts -reply``.

    authority = make_authority(tmp_path / "tsa")
    with LocalTsa(authority) as tsa:
        settings = ...(tsa_url=tsa.url, tsa_certs=authority.chain)
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from tests.servers import ChildServer, free_port

__all__ = ["LocalTsa", "TsaAuthority", "make_authority"]

SERVER_SCRIPT = Path(__file__).with_name("tsa_server.py")

# The reply carries the signing certificate only (certReq): ``openssl ts``
# writes a chain's certificates in chain order, not as the sorted DER SET OF
# that rfc3161-client's strict parser requires; the verifier is given the
# chain (LEDGER_TSA_CERTS, --tsa-cert) anyway.
_TS_CONFIG = """\
[ tsa ]
default_tsa = tsa_config

[ tsa_config ]
dir = {directory}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.55555.1.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""

_CA_EXTENSIONS = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
_TSA_EXTENSIONS = (
    "basicConstraints=critical,CA:FALSE\n"
    "keyUsage=critical,digitalSignature\n"
    "extendedKeyUsage=critical,timeStamping\n"
)


@dataclass(frozen=True)
class TsaAuthority:
    """The files of one authority: what a ledger is configured with, and what signs."""

    directory: Path
    #: PEM: the TSA certificate, the intermediate, the root (LEDGER_TSA_CERTS).
    chain: Path
    #: PEM: the root CA alone.
    root: Path
    #: The ``openssl ts`` configuration ``tests/tsa_server.py`` replies with.
    config: Path
    #: The TSA certificate's subject, as RFC 4514 (``CN=…``).
    subject: str


def _openssl(directory: Path, *argv: str) -> None:
    subprocess.run(["openssl", *argv], cwd=directory, check=True, capture_output=True, timeout=60)


def _key(directory: Path, name: str) -> None:
    _openssl(directory, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", name)


def _issue(directory: Path, name: str, subject: str, issuer: str, extensions: str) -> None:
    """``name``.pem for ``name``.key, signed by ``issuer``.pem/.key with ``extensions``."""
    _key(directory, f"{name}.key")
    (directory / f"{name}.ext").write_text(extensions)
    _openssl(
        directory, "req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr"
    )
    _openssl(
        directory, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{issuer}.pem",
        "-CAkey", f"{issuer}.key", "-set_serial", "0x" + name.encode().hex(), "-days", "3650",
        "-extfile", f"{name}.ext", "-out", f"{name}.pem",
    )  # fmt: skip


def make_authority(directory: Path, name: str = "Test TSA") -> TsaAuthority:
    """A fresh root, intermediate and TSA certificate named ``name`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    _key(directory, "root.key")
    _openssl(
        directory, "req", "-x509", "-new", "-key", "root.key", "-subj", f"/CN={name} Root",
        "-days", "3650", "-out", "root.pem",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    _issue(directory, "intermediate", f"/CN={name} Intermediate", "root", _CA_EXTENSIONS)
    _issue(directory, "tsa", f"/CN={name}", "intermediate", _TSA_EXTENSIONS)
    chain = directory / "chain.pem"
    chain.write_text(
        "".join((directory / f"{part}.pem").read_text() for part in ("tsa", "intermediate", "root"))
    )
    (directory / "serial").write_text("01\n")
    config = directory / "openssl-ts.cnf"
    config.write_text(_TS_CONFIG.format(directory=directory))
    return TsaAuthority(
        directory=directory,
        chain=chain,
        root=directory / "root.pem",
        config=config,
        subject=f"CN={name}",
    )


class LocalTsa(ChildServer):
    """``authority`` answering RFC 3161 queries at ``url`` (POST /), in a child process."""

    def __init__(self, authority: TsaAuthority, *, port: int | None = None) -> None:
        self.authority = authority
        port = port or free_port()
        super().__init__(
            [sys.executable, str(SERVER_SCRIPT), str(port), str(authority.config)],
            port=port,
            log_path=authority.directory / f"tsa-{port}.log",
        )
        self.url = f"http://127.0.0.1:{port}/"

    def __enter__(self) -> LocalTsa:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
