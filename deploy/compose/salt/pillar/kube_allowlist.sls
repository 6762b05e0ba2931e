# Pillar of the protected minions (every option: salt/pillar.example). Redis (its container shares
# the minion's network namespace) admits exactly the nodes of the k3s cluster "local".
kube_allowlist:
  # nftables: its own table, and no ipset kernel module needed on the Docker host.
  backend: nftables
  # The formula syncs the modules from the master's file_roots (no package index needed here).
  install:
    method: sync
  # No systemd in these containers: the boot unit is left out; startup_states restores instead.
  boot:
    enabled: false
  clusters:
    local: {}
  rules:
    - name: redis
      clusters: local
      proto: tcp
      ports: [6379]
      others: drop
      families: [ipv4]
