"""Certificates and secrets for the secured local servers, made at test time into a state folder.

A private CA (trustme) signs a server certificate for loopback (127.0.0.1, localhost) and a
client certificate for mutual TLS; keys are PKCS#8 PEM, the one form Kafka's PEM keystore
reads. Files are made once per folder and reused, so a restarted server keeps its identity.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of one private CA: its certificate, a server's and a client's."""

    ca: Path
    server_chain: Path
    server_key: Path
    client_chain: Path
    client_key: Path


def _pkcs8(pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(pem, password=None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_private(path: Path, data: bytes) -> Path:
    """Write `data` to `path`, readable by its owner only (keys, passwords)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return path


def tls_files(folder: Path) -> TlsFiles:
    """The CA and certificates under `folder`, made now unless they exist."""
    files = TlsFiles(
        ca=folder / "ca.pem",
        server_chain=folder / "server.pem",
        server_key=folder / "server.key",
        client_chain=folder / "client.pem",
        client_key=folder / "client.key",
    )
    if all(Path(p).exists() for p in vars(files).values()):
        return files
    import trustme

    ca = trustme.CA(organization_name="prc local CA")
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("prc-client.local", common_name="prc-client")
    folder.mkdir(parents=True, exist_ok=True)
    ca.cert_pem.write_to_path(str(files.ca))
    files.server_chain.write_bytes(b"".join(p.bytes() for p in server.cert_chain_pems))
    write_private(files.server_key, _pkcs8(server.private_key_pem.bytes()))
    files.client_chain.write_bytes(b"".join(p.bytes() for p in client.cert_chain_pems))
    write_private(files.client_key, _pkcs8(client.private_key_pem.bytes()))
    return files


def other_ca(folder: Path) -> Path:
    """A CA that signed none of our certificates (for the untrusted-certificate case)."""
    path = folder / "other-ca.pem"
    if not path.exists():
        import trustme

        folder.mkdir(parents=True, exist_ok=True)
        trustme.CA(organization_name="someone else's CA").cert_pem.write_to_path(str(path))
    return path


def secret(folder: Path, name: str) -> str:
    """A random password kept in `folder/name` (made once; letters and digits only)."""
    path = folder / name
    if path.exists():
        return path.read_text()
    value = secrets.token_hex(16)
    write_private(path, value.encode())
    return value
