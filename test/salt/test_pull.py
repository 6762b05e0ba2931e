"""kube_allowlist.pull against a local HTTPS fake of /api/v1/nodes (loopback only)."""

import base64
import datetime
import http.server
import ipaddress
import json
import ssl
import threading

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

TOKEN = "pull-test-token"
NODES = [
    {
        "metadata": {"name": f"n{i}"},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": f"10.1.0.{i}"},
                {"type": "InternalIP", "address": f"fd01::{i}"},
                {"type": "ExternalIP", "address": f"203.0.113.{i}"},
                {"type": "Hostname", "address": f"n{i}"},
            ]
        },
    }
    for i in range(1, 6)
] + [{"metadata": {"name": "new"}, "status": {}}]


def self_signed():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ksb-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


class NodesHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server API)
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.send_response(401)
            self.end_headers()
            return
        page = 1 if "continue=p2" in self.path else 0
        body = {"items": NODES[:3] if page == 0 else NODES[3:], "metadata": {"continue": "p2"} if page == 0 else {}}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(name="apiserver")
def fixture_apiserver(tmp_path):
    cert, key = self_signed()
    (tmp_path / "tls.crt").write_bytes(cert)
    (tmp_path / "tls.key").write_bytes(key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NodesHandler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "c",
        "clusters": [
            {
                "name": "k",
                "cluster": {
                    "server": f"https://127.0.0.1:{server.server_address[1]}",
                    "certificate-authority-data": base64.b64encode(cert).decode(),
                },
            }
        ],
        "users": [{"name": "u", "user": {"token": TOKEN}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    }
    path = tmp_path / "prod.kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    yield server, str(path)
    server.shutdown()
    server.server_close()


def test_pull_reads_nodes_and_falls_back_to_cache(make_module, kernel, apiserver):
    server, kubeconfig = apiserver
    mod = make_module(clusters={"prod": {"kubeconfig": kubeconfig}})
    ret = mod.pull("prod")
    assert (ret["applied"], mod.__context__["retcode"], ret["generation"]) == (True, 0, 0), ret
    assert sorted(kernel.sets["ksb-prod-4"][1]) == [f"10.1.0.{i}" for i in range(1, 6)]
    assert sorted(kernel.sets["ksb-prod-6"][1]) == [f"fd01::{i}" for i in range(1, 6)]
    assert mod.show()["clusters"]["prod"]["source"] == "pull"
    server.shutdown()
    server.server_close()
    kernel.mutations.clear()
    ret = mod.pull("prod")
    assert mod.__context__["retcode"] == 2 and "firewall kept from cache (generation 0)" in ret["reason"]
    assert kernel.mutations == [] and len(kernel.sets["ksb-prod-4"][1]) == 5


def test_pull_types_and_families_from_pillar(make_module, kernel, apiserver):
    _, kubeconfig = apiserver
    mod = make_module(
        clusters={"prod": {"kubeconfig": kubeconfig, "address_types": ["ExternalIP"], "families": ["ipv4"]}}
    )
    assert mod.pull("prod")["applied"]
    assert sorted(kernel.sets["ksb-prod-4"][1]) == [f"203.0.113.{i}" for i in range(1, 6)]
    assert kernel.sets["ksb-prod-6"][1] == []


def test_pull_with_wrong_token_keeps_cache(make_module, apiserver, tmp_path):
    _, kubeconfig = apiserver
    doc = yaml.safe_load(open(kubeconfig, encoding="utf-8"))
    doc["users"][0]["user"]["token"] = "wrong"
    (tmp_path / "bad.kubeconfig").write_text(yaml.safe_dump(doc))
    mod = make_module(clusters={"prod": {"kubeconfig": str(tmp_path / "bad.kubeconfig")}})
    ret = mod.pull("prod")
    assert "HTTP 401" in ret["reason"] and mod.__context__["retcode"] == 2
