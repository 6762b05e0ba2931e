# kube-salt-bridge container image.
#
#   BASE  a Debian-based Node.js 22 (>= 22.19) image with npm in the build stage and tini at
#         /usr/bin/tini (one is installed from Debian when the base lacks it).
#         scripts/build-image.sh makes one with debootstrap (Debian minbase + tini + Node.js 22
#         from the npm registry) and builds this file unchanged with buildah; with Docker, the
#         default below works as it is.
#
# The runtime stage holds only the compiled bridge (dist/), its production node_modules and
# package.json; it runs as uid 10001, needs no writable path but the state volume (run it with a
# read-only root file system) and carries no secret: config and secrets are mounted at run time.
ARG BASE=docker.io/library/node:22-bookworm-slim

# --- build: npm ci with dev dependencies, TypeScript -> dist/ ----------------------------------
FROM ${BASE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# npm behind a TLS-inspecting proxy: the optional build secret `npm-ca` is a CA bundle npm then
# trusts too (scripts/build-image.sh passes the host's trust store); it is mounted for this step
# only and never stored in a layer.
RUN --mount=type=cache,target=/root/.npm \
    --mount=type=secret,id=npm-ca,target=/run/secrets/npm-ca \
    if [ -s /run/secrets/npm-ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm-ca; fi \
 && npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/env.sh scripts/env.sh
COPY src src
RUN npm run build && node dist/main.js --version

# --- production dependencies only (cached on package-lock.json alone) ----------------------------
FROM ${BASE} AS deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    --mount=type=secret,id=npm-ca,target=/run/secrets/npm-ca \
    if [ -s /run/secrets/npm-ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm-ca; fi \
 && npm ci --omit=dev --no-audit --no-fund --ignore-scripts

# --- runtime ---------------------------------------------------------------------------------------
FROM ${BASE}
LABEL org.opencontainers.image.title="kube-salt-bridge" \
      org.opencontainers.image.description="Watches Kubernetes Nodes and fires signed Salt events so firewalls admit exactly the nodes" \
      org.opencontainers.image.licenses="Apache-2.0"
# tini as PID 1: the kernel gives PID 1 no default signal actions, so without an init a SIGTERM that
# arrives before the bridge has installed its handler (config load, a stuck start) would be ignored
# until the kubelet's or Docker's SIGKILL; tini forwards SIGTERM/SIGINT to the bridge, which then
# stops cleanly, exits with the bridge's code and reaps any zombie. Kubernetes has no `--init`.
RUN if [ ! -x /usr/bin/tini ]; then \
      apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*; \
    fi \
 && groupadd --gid 10001 ksb \
 && useradd --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin ksb \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/kube-salt-bridge \
 && install -d -m 0755 /etc/kube-salt-bridge
WORKDIR /app
COPY --from=deps /src/node_modules node_modules
COPY --from=build /src/dist dist
COPY package.json LICENSE ./
ENV NODE_ENV=production
USER 10001:10001
VOLUME ["/var/lib/kube-salt-bridge"]
EXPOSE 9540
# /healthz on loopback: the bridge accepts an IP literal in Host, and http.listen must then be
# 127.0.0.1:9540 (the default) or 0.0.0.0:9540; KSB_HEALTHCHECK_URL names another.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.KSB_HEALTHCHECK_URL||'http://127.0.0.1:9540/healthz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# --max-semi-space-size=1: the node option of the package's command (bin/kube-salt-bridge.js says why).
ENTRYPOINT ["/usr/bin/tini", "--", "node", "--max-semi-space-size=1", "/app/dist/main.js"]
CMD ["run", "--config", "/etc/kube-salt-bridge/config.yaml"]
