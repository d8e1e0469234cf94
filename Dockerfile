# One image for both services; docker-compose.yml picks the entrypoint with `command`.
#   docker build -t request-mirror .            the services (dist/ only)
#   docker build --target demo -t rm-demo .      the demo upstream and webhook receiver (tools/demo)

# The Node.js version is tools/versions.sh's NODE_VERSION (test/compose/compose.test.ts checks it).
FROM node:24.22.3-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY contract ./contract
COPY ingress-tap ./ingress-tap
COPY dispatcher ./dispatcher
COPY kubernetes ./kubernetes
RUN npm run build && npm prune --omit=dev

FROM node:24.22.3-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER node
EXPOSE 8080 8081 9080 9081
CMD ["node", "dist/ingress-tap/main.js"]

# The demo's upstream and receiver run from TypeScript (Node 24 strips types); they need only the contract and zod.
FROM runtime AS demo
COPY --chown=node:node contract ./contract
COPY --chown=node:node tools/demo ./tools/demo
CMD ["node", "tools/demo/upstream.ts"]
