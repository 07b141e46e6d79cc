#!/usr/bin/env bash
# The consumer test: pack the built package; check package.json and the exports map (publint) and
# the types under every resolver (attw; the package is ESM only, so the CommonJS rows are not asked
# for); install the tarball into an empty project without
# this repository's dev dependencies, import every entry point, verify a development mandate on
# every backend, and type-check a consumer file against the published types (@types/express because
# the MCP SDK's own declarations import it).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
here="$repo/.ci/consumer"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
version_of() { node -p "require('$repo/node_modules/$1/package.json').version"; }

cd "$repo"
tarball="$work/$(npm pack --ignore-scripts --silent --pack-destination "$work" | tail -n 1)"
files="$(tar -tzf "$tarball")"
for wanted in LICENSE dist/src/backends/caracal.wasm dist/src/index.d.ts; do
  grep -qx "package/$wanted" <<<"$files" || { echo "consumer: the tarball lacks $wanted"; exit 1; }
done
if grep -E 'bench/|demo/|test/|\.map$|\.test\.' <<<"$files"; then
  echo "consumer: the tarball holds files a consumer must not get (above)"; exit 1
fi

npx publint --strict --pack false
# The wasm file is exported for initWasm users (README "Runtimes"); it has no types to check.
npx attw "$tarball" --profile esm-only --exclude-entrypoints ./caracal.wasm

mkdir -p "$work/app" && cd "$work/app"
printf '{ "name": "consumer", "private": true, "type": "module" }\n' > package.json
npm install --omit=dev --no-audit --no-fund --loglevel=error "$tarball" \
  "@modelcontextprotocol/sdk@$(version_of @modelcontextprotocol/sdk)" "ioredis@$(version_of ioredis)" \
  "typescript@$(version_of typescript)" "@types/node@$(version_of @types/node)" "@types/express@$(version_of @types/express)"
cp "$here/check.mjs" "$here/types.ts" "$here/types-fetch.ts" "$here/tsconfig.fetch.json" .
node check.mjs
typecheck() {
  npx tsc --noEmit --strict --skipLibCheck false --types node --target es2022 --module node16 --moduleResolution node16 types.ts
  npx tsc --noEmit --strict --skipLibCheck false --types node --target es2022 --module esnext --moduleResolution bundler types.ts
  echo "consumer: types check with moduleResolution node16 and bundler (ioredis $(node -p "require('ioredis/package.json').version"))"
}
typecheck
npx tsc -p tsconfig.fetch.json
echo "consumer: the Fetch entry type-checks without @types/node"
# The other tested major of the ioredis peer range.
npm install --omit=dev --no-audit --no-fund --loglevel=error "ioredis@$(version_of ioredis-6)"
typecheck
