// Validates the Istio objects of rendered manifests (multi-document YAML files) against Istio's
// CRD schemas, as shipped in @kubernetes-models/istio (pinned in package.json):
//   1. its generated validator: types, enums, required fields, patterns;
//   2. TypeScript's excess-property check: each object is written as a literal of the package's
//      typed model (IVirtualService, ...), so a field the CRD does not have is an error.
// Exit status 1 with one line per problem; prints how many objects it checked otherwise.
//   node scripts/istio-validate/validate.mjs FILE...
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import ts from "typescript";

const here = dirname(fileURLToPath(import.meta.url));
const models = "@kubernetes-models/istio";

const problems = [];
const objects = [];
for (const file of process.argv.slice(2)) {
  for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
    const obj = doc.toJS();
    if (!obj || typeof obj.apiVersion !== "string") continue;
    const [group, version] = obj.apiVersion.split("/");
    if (!group.endsWith(".istio.io")) continue;
    objects.push({ file, obj, group, version });
  }
}

// 1. The generated validators.
for (const { file, obj, group, version } of objects) {
  const where = `${file}: ${obj.kind}/${obj.metadata?.name}`;
  let Model;
  try {
    ({ [obj.kind]: Model } = await import(`${models}/${group}/${version}/${obj.kind}`));
  } catch {
    problems.push(`${where}: ${obj.apiVersion} ${obj.kind} is not an Istio resource`);
    continue;
  }
  try {
    new Model(obj).validate();
  } catch (e) {
    problems.push(`${where}: ${e.message}`);
  }
}

// 2. Unknown fields: every object as a typed literal, compiled in one program.
// Under this folder, so that the imports resolve from its node_modules.
const dir = mkdtempSync(join(here, ".check-"));
try {
  const lines = [];
  const where = [];
  objects.forEach(({ file, obj, group, version }, i) => {
    const type = `I${obj.kind}`;
    lines.push(`import type { ${type} as T${i} } from "${models}/${group}/${version}/${obj.kind}";`);
    where.push(`${file}: ${obj.kind}/${obj.metadata?.name}`);
  });
  const first = lines.length;
  objects.forEach(({ obj }, i) => {
    lines.push(`export const o${i}: T${i} = ${JSON.stringify(obj)};`);
  });
  const source = join(dir, "objects.ts");
  writeFileSync(source, lines.join("\n") + "\n");
  const program = ts.createProgram([source], {
    noEmit: true,
    strict: true,
    skipLibCheck: true,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    target: ts.ScriptTarget.ES2022,
    types: [],
  });
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const text = ts.flattenDiagnosticMessageText(d.messageText, " ");
    if (d.file && d.start !== undefined) {
      const line = d.file.getLineAndCharacterOfPosition(d.start).line;
      const i = line - first;
      problems.push(`${where[i] ?? source}: ${text}`);
    } else {
      problems.push(text);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

for (const p of problems) console.log(p);
if (problems.length) process.exit(1);
console.log(`${objects.length} Istio objects valid against the Istio CRD schemas`);
