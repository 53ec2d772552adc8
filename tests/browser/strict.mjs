// Parses playlists with an independent strict parser (the npm package hls-parser, strictMode) and
// prints one JSON object: `node tests/browser/strict.mjs FILE`.
//
// FILE holds a JSON array of {"name": ..., "text": ...}: the playlists a test fetched, each named
// by the request that returned it. The output is {"checked": N, "errors": [{name, error, text}]}.
// Like the other scripts here it only reports: tests/llhls.rs judges. It exits non-zero only when
// it cannot read FILE.
import { readFileSync } from 'node:fs';
import HLS from 'hls-parser';

const [file] = process.argv.slice(2);
if (!file) {
  console.error('usage: strict.mjs FILE');
  process.exit(2);
}
const playlists = JSON.parse(readFileSync(file, 'utf8'));
HLS.setOptions({ strictMode: true });
const errors = [];
for (const { name, text } of playlists) {
  try {
    HLS.parse(text);
  } catch (e) {
    errors.push({ name, error: String(e?.message ?? e), text });
  }
}
console.log(JSON.stringify({ checked: playlists.length, errors }));
