# syntax=docker/dockerfile:1
#
# consentflow engine image.
#
#   docker build -t consentflow .
#   docker run --rm consentflow --help
#
# One image for every role; the command picks the role: `start` (default: API, workers and scheduler
# in one process), `api`, `worker [--queues a,b]`, `migrate`, `keys create --role ROLE`.
# Configuration is environment only. NODE_ENV=production is baked in, so MASTER_KEY, PSEUDONYM_KEY
# and LINK_SIGNING_KEY (or their *_FILE variants) must be given, and Redis must be given as REDIS_URL:
# the image ships no redis-server and production never embeds one. `api` and `worker` also need
# DATABASE_URL (without it, `start` keeps an embedded PostgreSQL under DATA_DIR, which is lost with
# the container unless a volume is mounted at /app/.data).
#
# Run it with an init process as PID 1 (`docker run --init`, or `init: true` in Compose) rather than
# installing tini here: it reaps zombies and forwards signals, and the engine's own SIGTERM handler
# then drains work and exits.

# ---- build: compile TypeScript, then drop devDependencies ----------------------------------------
FROM node:20-bookworm-slim AS build
WORKDIR /app

COPY package.json package-lock.json tsconfig*.json ./
COPY engine/ engine/
COPY workers/ workers/
COPY schemas/ schemas/
COPY scripts/ scripts/
COPY bin/ bin/
# rules/ can be empty, and git does not keep empty directories, so a fresh clone may not have it.
# The wildcard makes the copy optional (BuildKit accepts a wildcard that matches nothing; a plain
# `COPY rules/` would fail the build), and mkdir makes sure the directory exists either way.
COPY rule[s] rules/
RUN mkdir -p rules

# `npm ci` runs the `prepare` script, which is `npm run build` (tsc -> dist/). That needs the
# devDependencies (typescript), so install everything and build first, then prune down to the
# production dependencies that get copied into the runtime image. NODE_ENV is deliberately not
# production in this stage, or npm would skip the devDependencies.
RUN --mount=type=cache,target=/root/.npm \
    npm ci --no-audit --no-fund \
 && npm prune --omit=dev --no-audit --no-fund

# ---- runtime: only what `node bin/consentflow.js` needs -----------------------------------------
FROM node:20-bookworm-slim AS runtime

ENV NODE_ENV=production \
    HTTP_HOST=0.0.0.0 \
    DATA_DIR=/app/.data

WORKDIR /app

# Copied as root and left root-owned: the process runs as `node` and cannot rewrite its own code or
# dependencies. package.json is read for `--version`.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY --from=build /app/rules ./rules

# DATA_DIR is the only place the engine writes (embedded database and Redis, development keys), so
# it is the only directory the unprivileged user owns.
RUN mkdir -p /app/.data && chown node:node /app/.data

# Non-root user shipped with the official Node images (uid 1000).
USER node

EXPOSE 8080

# Liveness only (/healthz checks no dependency, so a database outage does not mark the container
# unhealthy); use /readyz for load-balancer readiness. The slim image has no curl or wget, so Node's
# built-in fetch does the request. HTTP_PORT is honoured if overridden. A `worker` serves HTTP only
# on WORKER_METRICS_PORT (/healthz, /readyz, /metrics): set it for worker containers (Compose does),
# or disable this check for them.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.WORKER_METRICS_PORT || process.env.HTTP_PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

ENTRYPOINT ["node", "bin/consentflow.js"]
CMD ["start"]
