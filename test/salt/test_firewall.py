"""Exact backend inputs (ipset restore, iptables-restore, nft -f) and readback parsing."""

import pytest

from saltext.kube_allowlist.utils import firewall, ipset, iptables, nftables

RULES = [
    {
        "name": "pg",
        "clusters": ["prod"],
        "proto": "tcp",
        "ports": ["5432", "6000:6010"],
        "others": "drop",
        "families": ["ipv4", "ipv6"],
        "extra_sources": {"ipv4": ["192.0.2.10"], "ipv6": []},
    },
    {
        "name": "dns",
        "clusters": ["prod", "edge-1"],
        "proto": "udp",
        "ports": ["53"],
        "others": "reject",
        "families": ["ipv6"],
        "extra_sources": {"ipv4": [], "ipv6": []},
    },
]
CACHES = {
    "prod": {"ipv4": ["10.0.0.2", "10.0.0.3", "10.244.0.0/16"], "ipv6": ["fd00::2"]},
    "edge-1": {"ipv4": [], "ipv6": ["fd00::9"]},
}


@pytest.fixture(name="desired")
def fixture_desired():
    return firewall.desired_state({"rules": RULES, "max_entries": 20000}, CACHES)


def test_ipset_restore_text():
    text = ipset.ipset_script({"ksb-prod-4": ("ipv4", ["10.0.0.2", "10.244.0.0/16"])}, {"ksb-prod-4"}, 65536)
    assert text == (
        "create ksb-prod-4t hash:net family inet maxelem 65536\n"
        "add ksb-prod-4t 10.0.0.2\n"
        "add ksb-prod-4t 10.244.0.0/16\n"
        "swap ksb-prod-4t ksb-prod-4\n"
        "destroy ksb-prod-4t\n"
    )
    first = ipset.ipset_script({"ksb-prod-6": ("ipv6", [])}, {"ksb-prod-6t"}, 65536)
    assert first == (
        "flush ksb-prod-6t\n"
        "create ksb-prod-6 hash:net family inet6 maxelem 65536\n"
        "swap ksb-prod-6t ksb-prod-6\n"
        "destroy ksb-prod-6t\n"
    )


def test_iptables_restore_text_ipset_mode(desired):
    current = {"chain": False, "lines": [], "jumps": 0}
    assert iptables.chain_script(current, iptables.iptables_lines(desired, "ipv6", per_ip=False)) == (
        "*filter\n"
        ":KSB-ALLOW - [0:0]\n"
        "-I INPUT 1 -j KSB-ALLOW\n"
        "-A KSB-ALLOW -i lo -j RETURN\n"
        '-A KSB-ALLOW -p tcp -m multiport --dports 5432,6000:6010 -m set --match-set ksb-prod-6 src -m comment --comment "ksb:pg" -j ACCEPT\n'
        '-A KSB-ALLOW -p tcp -m multiport --dports 5432,6000:6010 -m comment --comment "ksb:pg" -j DROP\n'
        '-A KSB-ALLOW -p udp -m multiport --dports 53 -m set --match-set ksb-prod-6 src -m comment --comment "ksb:dns" -j ACCEPT\n'
        '-A KSB-ALLOW -p udp -m multiport --dports 53 -m set --match-set ksb-edge-1-6 src -m comment --comment "ksb:dns" -j ACCEPT\n'
        '-A KSB-ALLOW -p udp -m multiport --dports 53 -m comment --comment "ksb:dns" -j REJECT --reject-with icmp6-port-unreachable\n'
        "COMMIT\n"
    )


def test_iptables_restore_text_per_ip_mode(desired):
    assert iptables.iptables_lines(desired, "ipv4", per_ip=True) == ["-A KSB-ALLOW -i lo -j RETURN"] + [
        f'-A KSB-ALLOW -s {src} -p tcp -m multiport --dports 5432,6000:6010 -m comment --comment "ksb:pg" -j ACCEPT'
        for src in ("10.0.0.2/32", "10.0.0.3/32", "10.244.0.0/16", "192.0.2.10/32")
    ] + ['-A KSB-ALLOW -p tcp -m multiport --dports 5432,6000:6010 -m comment --comment "ksb:pg" -j DROP']


def test_loopback_returns_first_and_only_when_a_rule_renders(desired):
    """Local clients (lo: 127.0.0.1, ::1, the host's own addresses) never meet a rule of ours."""
    for family in ("ipv4", "ipv6"):
        for per_ip in (False, True):
            assert iptables.iptables_lines(desired, family, per_ip)[0] == "-A KSB-ALLOW -i lo -j RETURN"
    v6_only = firewall.desired_state({"rules": RULES[1:], "max_entries": 10}, CACHES)
    assert iptables.iptables_lines(v6_only, "ipv4", per_ip=False) == [], "no rule for ipv4: no chain at all"
    _, text = nftables.nft_script(v6_only)
    first_rule = next(line for line in text.splitlines() if line.startswith("add rule"))
    assert first_rule == 'add rule inet kube_allowlist input iifname "lo" return'


def test_chain_removal_and_duplicate_jumps():
    assert iptables.chain_script({"chain": True, "lines": ["x"], "jumps": 2}, []) == (
        "*filter\n-D INPUT -j KSB-ALLOW\n-D INPUT -j KSB-ALLOW\n-F KSB-ALLOW\n-X KSB-ALLOW\nCOMMIT\n"
    )
    assert iptables.chain_script({"chain": True, "lines": [], "jumps": 2}, ["-A KSB-ALLOW -j DROP"]) == (
        "*filter\n:KSB-ALLOW - [0:0]\n-D INPUT -j KSB-ALLOW\n-A KSB-ALLOW -j DROP\nCOMMIT\n"
    )


def test_nft_text(desired):
    fingerprint, text = nftables.nft_script(desired, existing_sets=["c_prod_4", "c_gone_4"])
    t = "inet kube_allowlist"
    assert text == (
        "table inet kube_allowlist {\n"
        "\tset c_edge_1_6 {\n\t\ttype ipv6_addr\n\t\tflags interval\n\t}\n"
        "\tset c_prod_4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t}\n"
        "\tset c_prod_6 {\n\t\ttype ipv6_addr\n\t\tflags interval\n\t}\n"
        "\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t}\n"
        "}\n"
        f"flush chain {t} input\n"
        f"flush set {t} c_edge_1_6\n"
        f"add element {t} c_edge_1_6 {{ fd00::9 }}\n"
        f"flush set {t} c_prod_4\n"
        f"add element {t} c_prod_4 {{ 10.0.0.2/31, 10.244.0.0/16 }}\n"
        f"flush set {t} c_prod_6\n"
        f"add element {t} c_prod_6 {{ fd00::2 }}\n"
        f'add rule {t} input iifname "lo" return\n'
        f'add rule {t} input meta nfproto ipv4 tcp dport {{ 5432, 6000-6010 }} ip saddr @c_prod_4 accept comment "pg"\n'
        f'add rule {t} input meta nfproto ipv4 tcp dport {{ 5432, 6000-6010 }} ip saddr {{ 192.0.2.10 }} accept comment "pg"\n'
        f'add rule {t} input meta nfproto ipv4 tcp dport {{ 5432, 6000-6010 }} drop comment "pg"\n'
        f'add rule {t} input meta nfproto ipv6 tcp dport {{ 5432, 6000-6010 }} ip6 saddr @c_prod_6 accept comment "pg"\n'
        f'add rule {t} input meta nfproto ipv6 tcp dport {{ 5432, 6000-6010 }} drop comment "pg"\n'
        f'add rule {t} input meta nfproto ipv6 udp dport {{ 53 }} ip6 saddr @c_prod_6 accept comment "dns"\n'
        f'add rule {t} input meta nfproto ipv6 udp dport {{ 53 }} ip6 saddr @c_edge_1_6 accept comment "dns"\n'
        f'add rule {t} input meta nfproto ipv6 udp dport {{ 53 }} reject comment "dns"\n'
        f"delete set {t} c_gone_4\n"
        f'add rule {t} input counter comment "ksb:{fingerprint}"\n'
    )


def test_pending_rule_renders_nothing():
    desired = firewall.desired_state({"rules": RULES, "max_entries": 10}, {"prod": CACHES["prod"]})
    assert [r["name"] for r in desired["rules"]] == ["pg"]
    assert desired["pending"] == {"dns": ["edge-1"]}
    assert desired["maxelem"] == 65536


def test_names_fit_kernel_limits():
    long_name = "a" * 63
    assert len(ipset.ipset_name(long_name, "ipv6") + "t") <= 31
    assert ipset.ipset_name(long_name, "ipv4") != ipset.ipset_name("a" * 62 + "b", "ipv4")
    assert nftables.nft_set_name("edge-1", "ipv4") == "c_edge_1_4"


def test_multiport_chunks():
    ports = [str(p) for p in range(1, 14)] + ["100:200", "300:400"]
    assert iptables.port_chunks(ports) == [ports[:14], ["300:400"]]  # a range takes 2 of 15 slots


def test_readback_parsers():
    saved = (
        "create ksb-prod-6 hash:net family inet6 hashsize 1024 maxelem 65536 bucketsize 12 initval 0x1\n"
        "add ksb-prod-6 fd00:0:0:1::/64\nadd ksb-prod-6 fd00::7\n"
        "create other hash:ip family inet\nadd other 10.9.9.9\n"
    )
    sets = ipset.parse_ipset_save(saved)
    assert list(sets) == ["ksb-prod-6"] and len(sets["ksb-prod-6"]["entries"]) == 2
    save = "*filter\n:INPUT ACCEPT [0:0]\n:KSB-ALLOW - [0:0]\n-A INPUT -j KSB-ALLOW\n-A KSB-ALLOW -j DROP\nCOMMIT\n"
    assert iptables.parse_iptables_save(save) == {"chain": True, "lines": ["-A KSB-ALLOW -j DROP"], "jumps": 1}
    listed = (
        'table inet kube_allowlist {\n\tset c_prod_4 {\n\t}\n\tchain input {\n\t\tcounter packets 1 bytes 2 comment "ksb:'
        + "a" * 64
        + '"\n'
    )
    assert nftables.parse_nft_list(listed) == {"fingerprint": "a" * 64, "sets": ["c_prod_4"]}


def test_plan_is_empty_when_kernel_matches(desired):
    fingerprint, _ = nftables.nft_script(desired)
    current = {
        "ipset": None,
        "ipv4": {"chain": False, "lines": [], "jumps": 0},
        "ipv6": {"chain": False, "lines": [], "jumps": 0},
        "nft": {"fingerprint": fingerprint, "sets": ["c_prod_4", "c_prod_6", "c_edge_1_6"]},
    }
    assert firewall.plan("nftables", desired, current) == []
    switched = firewall.plan("ipset", desired, dict(current, ipset={}))
    assert [s["desc"].split(":")[0] for s in switched] == ["ipset", "iptables-restore", "ip6tables-restore", "nft"]
