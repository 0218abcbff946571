// Writes GitHub's official OpenAPI description (from @octokit/openapi) trimmed to the endpoints
// listed in endpoints.txt, with every component they reference, for Prism to serve in tests.
//
//   node tools/github/trim-openapi.mjs OUT.json
//
// Fails when a listed endpoint is not in the description (a typo, or GitHub removed it).
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2];
if (!out) {
  console.error("usage: node tools/github/trim-openapi.mjs OUT.json");
  process.exit(64);
}
const full = JSON.parse(
  readFileSync(join(here, "node_modules/@octokit/openapi/generated/api.github.com.json"), "utf8"),
);
const wanted = readFileSync(join(here, "endpoints.txt"), "utf8")
  .split("\n")
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith("#"))
  .map((l) => {
    const [method, path] = l.split(/\s+/);
    return { method: method.toLowerCase(), path };
  });

const paths = {};
const missing = [];
for (const { method, path } of wanted) {
  const op = full.paths[path]?.[method];
  if (!op) {
    missing.push(`${method.toUpperCase()} ${path}`);
    continue;
  }
  paths[path] ??= {};
  if (full.paths[path].parameters) paths[path].parameters = full.paths[path].parameters;
  paths[path][method] = op;
}
if (missing.length) {
  console.error(`not in GitHub's OpenAPI description: ${missing.join(", ")}`);
  process.exit(1);
}

// Every "#/components/KIND/NAME" reachable from the kept operations.
const components = {};
const pending = [paths];
const seen = new Set();
while (pending.length) {
  const node = pending.pop();
  if (Array.isArray(node)) {
    pending.push(...node);
  } else if (node && typeof node === "object") {
    for (const [k, v] of Object.entries(node)) {
      if (k === "$ref" && typeof v === "string" && v.startsWith("#/components/")) {
        if (seen.has(v)) continue;
        seen.add(v);
        const [, , kind, name] = v.split("/");
        const target = full.components[kind]?.[name];
        if (target === undefined) {
          console.error(`dangling reference ${v}`);
          process.exit(1);
        }
        (components[kind] ??= {})[name] = target;
        pending.push(target);
      } else {
        pending.push(v);
      }
    }
  }
}

const trimmed = {
  openapi: full.openapi,
  info: full.info,
  servers: full.servers,
  paths,
  components,
};
writeFileSync(out, JSON.stringify(trimmed));
console.error(
  `${wanted.length} endpoints, ${seen.size} components: ${out} (${JSON.stringify(trimmed).length} bytes)`,
);
