"""
Minimal Kubernetes client for ``kube_allowlist.pull``: read a kubeconfig, GET /api/v1/nodes over
HTTPS (stdlib ``ssl`` + ``http.client``), return node addresses. No other API is touched.

Supported credentials: client certificate (file or inline data), bearer token (inline or
``tokenFile``), CA (file or inline data) or ``insecure-skip-tls-verify``. Exec/auth-provider plugins
are not supported: give the minion a kubeconfig with a ServiceAccount token (``get``/``list`` on nodes).
"""

import base64
import http.client
import ipaddress
import json
import os
import ssl
import tempfile
import urllib.parse

import yaml

PAGE = 500


class KubeError(RuntimeError):
    """The cluster API could not be read (configuration, network, TLS, HTTP status)."""


def _named(items, name, kind, path):
    for item in items or []:
        if item.get("name") == name:
            return item.get(kind) or {}
    raise KubeError(f"{path}: no {kind} named {name!r}")


def load_kubeconfig(path, context=None):
    """Return ``{"server", "ca_data", "insecure", "cert_data", "key_data", "token"}`` from a kubeconfig."""
    try:
        with open(path, encoding="utf-8") as handle:
            doc = yaml.safe_load(handle) or {}
    except (OSError, yaml.YAMLError) as err:
        raise KubeError(f"{path}: cannot read kubeconfig: {err}") from err
    base = os.path.dirname(os.path.abspath(path))
    ctx = _named(doc.get("contexts"), context or doc.get("current-context"), "context", path)
    cluster = _named(doc.get("clusters"), ctx.get("cluster"), "cluster", path)
    user = _named(doc.get("users"), ctx.get("user"), "user", path)

    def blob(section, key):
        if section.get(key + "-data"):
            return base64.b64decode(section[key + "-data"])
        if section.get(key):
            with open(os.path.join(base, section[key]), "rb") as handle:
                return handle.read()
        return None

    token = user.get("token")
    if not token and user.get("tokenFile"):
        with open(os.path.join(base, user["tokenFile"]), encoding="utf-8") as handle:
            token = handle.read().strip()
    server = cluster.get("server", "")
    if not server.startswith("https://"):
        raise KubeError(f"{path}: cluster server {server!r} must be an https:// URL")
    return {
        "server": server,
        "ca_data": blob(cluster, "certificate-authority"),
        "insecure": bool(cluster.get("insecure-skip-tls-verify")),
        "cert_data": blob(user, "client-certificate"),
        "key_data": blob(user, "client-key"),
        "token": token,
    }


def _ssl_context(conf):
    ctx = ssl.create_default_context()
    if conf["ca_data"]:
        ctx.load_verify_locations(cadata=conf["ca_data"].decode("ascii"))
    if conf["insecure"]:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if conf["cert_data"] and conf["key_data"]:
        with tempfile.TemporaryDirectory(prefix="ksb-") as tmp:
            cert, key = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
            for name, data in ((cert, conf["cert_data"]), (key, conf["key_data"])):
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
            ctx.load_cert_chain(cert, key)
    return ctx


def list_nodes(conf, timeout):
    """Return all Node objects (``items``), following ``continue`` pages of ``PAGE`` nodes."""
    url = urllib.parse.urlsplit(conf["server"])
    prefix = url.path.rstrip("/")
    headers = {"Accept": "application/json"}
    if conf["token"]:
        headers["Authorization"] = "Bearer " + conf["token"]
    items, token = [], ""
    try:
        conn = http.client.HTTPSConnection(url.hostname, url.port or 443, timeout=timeout, context=_ssl_context(conf))
        try:
            while True:
                query = urllib.parse.urlencode({"limit": PAGE, **({"continue": token} if token else {})})
                conn.request("GET", f"{prefix}/api/v1/nodes?{query}", headers=headers)
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200:
                    raise KubeError(f"GET /api/v1/nodes: HTTP {resp.status}: {body[:200]!r}")
                doc = json.loads(body)
                items.extend(doc.get("items") or [])
                token = (doc.get("metadata") or {}).get("continue")
                if not token:
                    return items
        finally:
            conn.close()
    except (OSError, ssl.SSLError, http.client.HTTPException, ValueError) as err:
        raise KubeError(f"GET {conf['server']}/api/v1/nodes failed: {err}") from err


def node_addresses(items, address_types, families):
    """Return ``({"ipv4": [...], "ipv6": [...]}, node_count)`` in canonical, sorted, unique form."""
    found = {"ipv4": set(), "ipv6": set()}
    nodes = 0
    for node in items:
        contributed = False
        for address in (node.get("status") or {}).get("addresses") or []:
            if address.get("type") not in address_types:
                continue
            try:
                addr = ipaddress.ip_address(str(address.get("address", "")).strip())
            except ValueError:
                continue
            family = "ipv4" if addr.version == 4 else "ipv6"
            if family in families and not getattr(addr, "ipv4_mapped", None):
                found[family].add(str(addr))
                contributed = True
        nodes += contributed
    return {f: sorted(v) for f, v in found.items()}, nodes
