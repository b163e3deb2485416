// JavaScript side of bench/tok/bench.sh: encodes a text file line by line (as `balora tokenize` does),
// reports MB/s of the encoding alone, and writes the ids (one line per input line) for comparison.
//   node bench/tok/bench.mjs SHARED FILE OUTDIR
import fs from 'fs';
import path from 'path';
import { createRequire } from 'module';
import { fileURLToPath } from 'url';
const here = path.dirname(fileURLToPath(import.meta.url));
const [shared, file, outdir] = process.argv.slice(2);
const nm = path.join(here, 'node_modules');
const require = createRequire(path.join(nm, 'x.js'));
const text = fs.readFileSync(file, 'utf8');
const lines = text.split('\n');
if (lines[lines.length - 1] === '') lines.pop();
const mb = Buffer.byteLength(text, 'utf8') / 1e6;

function run(name, encode) {
  encode('warm up'); // JIT and caches
  const t0 = process.hrtime.bigint();
  const out = lines.map(encode);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  fs.writeFileSync(path.join(outdir, name + '.ids'), out.map((x) => x.join(' ') + '\n').join(''));
  console.log(`${name.padEnd(28)} ${s.toFixed(3)} s  ${(mb / s).toFixed(2)} MB/s`);
}

const gpt3 = require('gpt-3-encoder');
run('js-gpt-3-encoder', (l) => gpt3.encode(l));

const { LlamaTokenizer } = await import(path.join(nm, 'llama-tokenizer-js/llama-tokenizer.js'));
const lj = JSON.parse(fs.readFileSync(path.join(shared, 'tokenizers/llama2/tokenizer.json'), 'utf8'));
const byId = [];
for (const [t, id] of Object.entries(lj.model.vocab)) byId[id] = t;
const mids = lj.model.merges.flatMap((m) => (Array.isArray(m) ? m : m.split(' ')).map((x) => lj.model.vocab[x]));
const llama = new LlamaTokenizer(Buffer.from(byId.join('\n')).toString('base64'), Buffer.from(new Uint16Array(mids).buffer).toString('base64'));
// HF's normalizer (Prepend "▁", Replace " " -> "▁") and BOS, as in dev/tok/gen_refs.mjs (no special tokens in this text)
run('js-llama-tokenizer-js', (l) => [1, ...(l ? llama.encode('\u2581' + l.replaceAll(' ', '\u2581'), false, false) : [])]);

const { Tokenizer } = await import(path.join(nm, '@huggingface/tokenizers/dist/tokenizers.mjs'));
const tjsLlama = new Tokenizer(lj, {});
run('js-tokenizers.js-llama2', (l) => tjsLlama.encode(l).ids);
