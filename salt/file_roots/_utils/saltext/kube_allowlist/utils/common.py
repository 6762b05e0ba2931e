"""
What the backend modules (:py:mod:`.ipset`, :py:mod:`.iptables`, :py:mod:`.nftables`) share: the
suffix that names a family's objects, and the step of a plan (one command and its stdin).

The contract's own names (the families, the cluster name pattern) live in :py:mod:`.payload`.
"""

# The suffix of a family's set (``ksb-<cluster>-4``, ``c_<cluster>_6``).
FAMILY_SUFFIX = {"ipv4": "4", "ipv6": "6"}


def step(argv, stdin, desc):
    """One step of a plan: the command ``argv``, its ``stdin`` (or None) and what it does, ``desc``."""
    return {"argv": argv, "stdin": stdin, "desc": desc}
