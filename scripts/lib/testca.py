"""A throwaway certificate authority for tests and benchmarks that serve DynamoDB (moto)
over TLS: `tls_files(dir)` writes the CA, a certificate for 127.0.0.1 it signed, its key,
and a bundle of the system's roots plus the CA (what `SSL_CERT_FILE` points at)."""

import datetime
from pathlib import Path


def tls_files(tmp):
    """A throwaway CA, a certificate for 127.0.0.1 it signed and its key (PEM files in
    tmp), and a bundle of the system's roots plus that CA: what a function in AWS reads
    (Amazon Linux 2023 keeps its roots in one bundle file) with the test CA added."""
    import ipaddress
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def usage(ca):
        return x509.KeyUsage(digital_signature=not ca, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                             encipher_only=False, decipher_only=False)

    def cert(subject, key, issuer, issuer_key, ca):
        b = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(minutes=5))
             .not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
             .add_extension(usage(ca), critical=True))
        if not ca:
            b = (b.add_extension(x509.SubjectAlternativeName([
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
                 .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
        return b.sign(issuer_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = cert("test CA", ca_key, "test CA", ca_key, True)
    leaf = cert("127.0.0.1", key, "test CA", ca_key, False)
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)
    files = {"ca": tmp / "ca.pem", "cert": tmp / "server.pem", "key": tmp / "server.key", "bundle": tmp / "bundle.pem"}
    files["ca"].write_bytes(pem(ca))
    files["cert"].write_bytes(pem(leaf) + pem(ca))
    files["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    system = Path("/etc/ssl/certs/ca-certificates.crt")
    files["bundle"].write_bytes((system.read_bytes() if system.exists() else b"") + pem(ca))
    return files
