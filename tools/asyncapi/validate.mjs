#!/usr/bin/env node
// Validate AsyncAPI documents with the official parser (@asyncapi/parser, pinned in package.json).
//
//   node tools/asyncapi/validate.mjs docs/asyncapi/*.json
//
// Every file is parsed with the parser's default ruleset (the AsyncAPI JSON Schema of the
// document's version plus the spec's semantic rules). Diagnostics of severity error make the run
// fail; warnings are printed but do not. Exit status: 0 all valid, 1 at least one invalid,
// 2 usage error.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { DiagnosticSeverity, Parser } from '@asyncapi/parser';

const SEVERITY = {
  [DiagnosticSeverity.Error]: 'error',
  [DiagnosticSeverity.Warning]: 'warning',
  [DiagnosticSeverity.Information]: 'info',
  [DiagnosticSeverity.Hint]: 'hint',
};

function where(diagnostic) {
  const at = diagnostic.path && diagnostic.path.length ? diagnostic.path.join('/') : '<root>';
  const line = diagnostic.range?.start?.line;
  return line === undefined ? at : `${at} (line ${line + 1})`;
}

async function validate(parser, file) {
  const source = await readFile(file, 'utf8');
  const { document, diagnostics } = await parser.parse(source, {
    source: pathToFileURL(path.resolve(file)).href,
  });
  const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
  const warnings = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Warning);
  for (const d of [...errors, ...warnings]) {
    const stream = d.severity === DiagnosticSeverity.Error ? console.error : console.warn;
    stream(`${file}: ${SEVERITY[d.severity]} ${d.code}: ${d.message} at ${where(d)}`);
  }
  if (document === undefined && errors.length === 0) {
    console.error(`${file}: error: the parser returned no document`);
    return false;
  }
  if (errors.length === 0) {
    const version = document.version();
    const title = document.info().title();
    console.log(`${file}: ok (AsyncAPI ${version}, "${title}", ${warnings.length} warning(s))`);
  }
  return errors.length === 0 && document !== undefined;
}

async function main(files) {
  if (files.length === 0) {
    console.error('usage: node validate.mjs FILE...');
    return 2;
  }
  const parser = new Parser();
  let ok = true;
  for (const file of files) {
    try {
      ok = (await validate(parser, file)) && ok;
    } catch (err) {
      console.error(`${file}: error: ${err?.message ?? err}`);
      ok = false;
    }
  }
  return ok ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
