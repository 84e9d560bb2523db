# syntax=docker/dockerfile:1
# Runtime Agent: multi-stage build, non-root user, data directory as a volume, HEALTHCHECK on /health.

FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 compiles from source when no prebuilt binary matches.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY adapters ./adapters
COPY services ./services
# The web console (served at /ui/) is bundled by Vite into dist/ui; nothing of it is fetched at run time.
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json \
 && node node_modules/vite/bin/vite.js build --config services/runtime-agent/ui/vite.config.mjs \
 && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
# iperf3 for the bundled iperf-server-start and iperf-client-run workflows; iproute2 (tc) for the
# FlowRunner traffic control, which also needs NET_ADMIN (docs/flowrunner.md#container-control).
RUN apt-get update && apt-get install -y --no-install-recommends iperf3 iproute2 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    HOST=127.0.0.1 \
    PORT=8080 \
    DATA_DIR=/data \
    SHUTDOWN_GRACE_SECONDS=25
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY workflows ./workflows
COPY bin ./bin
# The CLI (runtime-agent --help) on the PATH: `kubectl exec POD -c runtime-agent -- runtime-agent list`.
RUN ln -s /app/bin/runtime-agent.mjs /usr/local/bin/runtime-agent && mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
STOPSIGNAL SIGTERM
CMD ["node", "dist/services/runtime-agent/src/main.js"]
