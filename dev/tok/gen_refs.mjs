// Generates the reference id files of tests/data/tok/ from independent JavaScript tokenizers.
//
//   (cd bench/tok && npm install)          # gpt-3-encoder, llama-tokenizer-js, @huggingface/tokenizers
//   node dev/tok/gen_refs.mjs [../shared]  # writes tests/data/tok/*
//
// References and how their conventions are mapped to Hugging Face `tokenizers` (add_special_tokens=True):
// - gpt2.ids: gpt-3-encoder 1.1.4 (OpenAI's GPT-2 algorithm in JS; its bundled encoder.json/vocab.bpe are
//   byte-identical to ../shared/tokenizers/gpt2). It knows no special tokens: HF's GPT-2 tokenizer treats
//   "<|endoftext|>" in the text as the special token 50256, so the text is split there and 50256 put in
//   between. GPT-2 adds no BOS/EOS.
// - llama2.ids: llama-tokenizer-js 1.2.2, whose priority-queue BPE we run on the vocabulary and merges of
//   ../shared/tokenizers/llama2/tokenizer.json (its constructor takes vocab and merges; the bundled ones are
//   Meta's LLaMA vocabulary, which differs from this file's). Its encode() would add BOS and a leading
//   space and replace " " by id 29871's string (hard-coded for Meta's vocab), so we call
//   encode(text, false, false) on text that we normalised exactly as HF's normalizer does (Prepend "▁",
//   Replace " " -> "▁"), per segment between special tokens ("<s>", "</s>", "<unk>" in the text are
//   special tokens in HF), and put BOS (1) in front as HF's TemplateProcessing does. Empty text -> [1].
// - bert.ids / bert_pair.ids: @huggingface/tokenizers 0.2.0 (tokenizers.js, a JS port of HF tokenizers)
//   on the tokenizer.json that HF's BertTokenizerFast builds from bert-base-uncased/vocab.txt
//   (BertNormalizer lowercase, BertPreTokenizer, WordPiece, [CLS] A [SEP] B [SEP]).
// - a second reference for GPT-2 and LLaMA-2: the same texts through tokenizers.js on GPT-2's (generated)
//   and LLaMA-2's tokenizer.json; this script stops if the two references disagree on any line (they agree
//   on all 309 lines, so gpt2.ids / llama2.ids stand for both).
// - gpt2_decode.jsonl / llama2_decode.jsonl: decoded text of ids (also cut in the middle of multi-byte
//   characters): gpt-3-encoder's decode (TextDecoder: U+FFFD per maximal invalid subpart, like Rust's
//   from_utf8_lossy) and tokenizers.js's decode (ByteFallback: U+FFFD per invalid byte token).
// - unigram/tokenizer.json + unigram.ids: a small hand-made Unigram model, encoded by tokenizers.js.
import fs from 'fs';
import path from 'path';
import { createRequire } from 'module';
import { fileURLToPath } from 'url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const shared = path.resolve(process.argv[2] || path.join(root, '../shared'));
const out = path.join(root, 'tests/data/tok');
const nm = path.join(root, 'bench/tok/node_modules');
const require = createRequire(path.join(nm, 'x.js'));
const gpt3 = require('gpt-3-encoder');
const { LlamaTokenizer } = await import(path.join(nm, 'llama-tokenizer-js/llama-tokenizer.js'));
const { Tokenizer } = await import(path.join(nm, '@huggingface/tokenizers/dist/tokenizers.mjs'));
fs.mkdirSync(path.join(out, 'unigram'), { recursive: true });

// ---------------------------------------------------------------- inputs
const hard = [
  '', ' ', '  ', 'Hello world', ' Hello world', 'Hello  world', '   leading spaces', 'trailing spaces   ',
  'tabs\tand\ttabs', '\t\tdouble tab', 'new\nline', 'two\n\nnewlines', 'crlf\r\nline', ' \n \n ',
  "I'm", "you're we've they'll she'd it's I'M HE'S", "don't can't won't shouldn't", "'quoted' \"double\"",
  '12345 67890 3.14159 1,000,000', '2024-01-01T12:34:56Z', '007 0.5 -42 +3e10',
  '😀 emoji 👍🏽 family 👨‍👩‍👧', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛 𐍈', 'café naïve résumé Ångström', 'Crème brûlée à la mode',
  '日本語のテキストです。', '中文文本，标点。', '한국어 텍스트', 'Ελληνικά κείμενο', 'русский текст', 'العربية',
  'हिन्दी', 'ภาษาไทย', '<|endoftext|>', 'Hello<|endoftext|>world', 'a <|endoftext|> b <|endoftext|>',
  '<s>Hello</s>', 'Hello <s> world', ' <s> ', '</s></s>', '[CLS] hello [SEP] world [MASK]', '[UNK] [PAD]',
  "Don't stop! Wait... what?!", '$100 & 50% off #tag @user', 'x=1; y=2; z=x+y', 'def f(x):\n    return x * 2\n',
  '    indented code', '...', 'a'.repeat(300), ' '.repeat(100) + 'x', 'ab'.repeat(200), 'hello' + '!'.repeat(50),
  'ﬁ ligature ＡＢＣ fullwidth', '\u00a0nbsp\u00a0', 'zero\u200bwidth', 'combining e\u0301 o\u0308', 'Mixed CASE Words',
  'UPPER lower', 'İstanbul', 'ß straße STRASSE', 'control\u0007char', 'ÀÉÎÕÜ àéîõü', 'arabic digits ١٢٣',
  'email@example.com http://x.y/z?q=1&r=2', 'snake_case_name camelCaseName', '🤗🤗🤗', '\u3000ideographic space',
  'tab\tend\t', 'end with newline\n', '∑∫√∞ ≤≥', '♠♥♦♣', 'a\u0301\u0302', '\u2028line sep', 'Ünïcödé',
  'The quick brown fox jumps over the lazy dog.', "Mr. O'Neil's cat", 'e.g. i.e. etc.', '(parens) [brackets] {braces}',
  '1+1=2', '#include <stdio.h>', 'naïve—em-dash – en-dash', '“smart quotes” ‘single’', 'tilde~caret^',
  'grabbed', ' grabbed', '           grabbed', 'ax\n####\nboo', 'ì á ò', 'Lorem ipsum dolor sit amet',
];
const lines = (p) => fs.readFileSync(p, 'utf8').split('\n');
const sst = lines(path.join(shared, 'data/glue/SST-2/dev.tsv')).slice(1, 81).map((l) => l.split('\t')[0]);
const gsm = lines(path.join(shared, 'data/gsm8k/test.jsonl')).filter((l) => l).slice(0, 40).map((l) => JSON.parse(l));
const shake = lines(path.join(shared, 'data/text/tinyshakespeare.txt')).slice(1000, 1100);
const texts = [...hard, ...sst, ...gsm.slice(0, 30).map((g) => g.question), ...gsm.slice(30, 40).map((g) => g.answer), ...shake];
const qnli = lines(path.join(shared, 'data/glue/QNLI/dev.tsv')).slice(1, 41).map((l) => l.split('\t')).map((c) => [c[1], c[2]]);
// (no empty second text: tokenizers.js treats text_pair '' as no pair, HF as an empty pair; the C test checks that case by hand)
const pairs = [['', 'World'], ['Is it so?', 'Yes, it is.'], ['日本', 'テキスト'], ...qnli];

const w = (name, arr) => fs.writeFileSync(path.join(out, name), arr.map((x) => x + '\n').join(''));
w('inputs.jsonl', texts.map((t) => JSON.stringify(t)));
w('pairs.jsonl', pairs.map(([a, b]) => JSON.stringify({ text: a, pair: b })));

// ---------------------------------------------------------------- GPT-2
function splitOn(text, specials) { // -> [{text}|{special}] left to right, longest special first
  const out = []; let seg = 0, i = 0;
  while (i < text.length) {
    const s = specials.filter((x) => text.startsWith(x, i)).sort((a, b) => b.length - a.length)[0];
    if (s) { out.push({ text: text.slice(seg, i) }); out.push({ special: s }); i += s.length; seg = i; } else i++;
  }
  out.push({ text: text.slice(seg) });
  return out;
}
const gpt2Ids = (t) => splitOn(t, ['<|endoftext|>']).flatMap((p) => (p.special ? [50256] : p.text ? gpt3.encode(p.text) : []));
const gpt2 = texts.map(gpt2Ids);
w('gpt2.ids', gpt2.map((x) => x.join(' ')));

// tokenizer.json for GPT-2 as HF writes it, for tokenizers.js
const enc = JSON.parse(fs.readFileSync(path.join(shared, 'tokenizers/gpt2/encoder.json'), 'utf8'));
const bpe = fs.readFileSync(path.join(shared, 'tokenizers/gpt2/vocab.bpe'), 'utf8').split('\n').slice(1).filter((l) => l);
const bl = { add_prefix_space: false, trim_offsets: true, use_regex: true };
const gpt2Json = {
  version: '1.0', truncation: null, padding: null,
  added_tokens: [{ id: 50256, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
  normalizer: null, pre_tokenizer: { type: 'ByteLevel', ...bl }, post_processor: { type: 'ByteLevel', ...bl }, decoder: { type: 'ByteLevel', ...bl },
  model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, vocab: enc, merges: bpe },
};
const tjsGpt2 = new Tokenizer(gpt2Json, { model_max_length: 1024 });

// ---------------------------------------------------------------- LLaMA-2 (SentencePiece BPE, byte fallback)
const lj = JSON.parse(fs.readFileSync(path.join(shared, 'tokenizers/llama2/tokenizer.json'), 'utf8'));
const vocabById = [];
for (const [tok, id] of Object.entries(lj.model.vocab)) vocabById[id] = tok;
const mergeIds = [];
for (const m of lj.model.merges) {
  const [a, b] = Array.isArray(m) ? m : m.split(' ');
  mergeIds.push(lj.model.vocab[a], lj.model.vocab[b]);
}
const vocabB64 = Buffer.from(vocabById.join('\n'), 'utf8').toString('base64');
const mergesB64 = Buffer.from(new Uint16Array(mergeIds).buffer).toString('base64');
const llama = new LlamaTokenizer(vocabB64, mergesB64);
const llamaSpecials = lj.added_tokens.map((a) => a.content);
const llamaIds = (t) => [1, ...splitOn(t, llamaSpecials).flatMap((p) => {
  if (p.special) return [lj.added_tokens.find((a) => a.content === p.special).id];
  if (!p.text) return [];
  return llama.encode('\u2581' + p.text.replaceAll(' ', '\u2581'), false, false);
})];
const llama2 = texts.map(llamaIds);
w('llama2.ids', llama2.map((x) => x.join(' ')));
const llamaCfg = JSON.parse(fs.readFileSync(path.join(shared, 'tokenizers/llama2/tokenizer_config.json'), 'utf8'));
const tjsLlama = new Tokenizer(lj, llamaCfg);

// ---------------------------------------------------------------- BERT (WordPiece)
const vtxt = fs.readFileSync(path.join(shared, 'tokenizers/bert-base-uncased/vocab.txt'), 'utf8').split('\n');
if (vtxt[vtxt.length - 1] === '') vtxt.pop();
const bvocab = {};
vtxt.forEach((t, i) => { if (!(t in bvocab)) bvocab[t] = i; });
const spec = (c) => ({ id: bvocab[c], content: c, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
const bertJson = {
  version: '1.0', truncation: null, padding: null,
  added_tokens: ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].map(spec),
  normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
  pre_tokenizer: { type: 'BertPreTokenizer' },
  post_processor: {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
    pair: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } },
      { Sequence: { id: 'B', type_id: 1 } }, { SpecialToken: { id: '[SEP]', type_id: 1 } }],
    special_tokens: { '[CLS]': { id: '[CLS]', ids: [bvocab['[CLS]']], tokens: ['[CLS]'] }, '[SEP]': { id: '[SEP]', ids: [bvocab['[SEP]']], tokens: ['[SEP]'] } },
  },
  decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
  model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: bvocab },
};
const tjsBert = new Tokenizer(bertJson, { do_lower_case: true, model_max_length: 512 });
w('bert.ids', texts.map((t) => tjsBert.encode(t).ids.join(' ')));
w('bert_pair.ids', pairs.map(([a, b]) => {
  const e = tjsBert.encode(a, { text_pair: b, return_token_type_ids: true });
  return e.ids.join(' ') + '\t' + e.token_type_ids.join(' ');
}));
w('bert_nospecial.ids', texts.map((t) => tjsBert.encode(t, { add_special_tokens: false }).ids.join(' ')));

// ---------------------------------------------------------------- second references and decoding
const tg = texts.map((t) => tjsGpt2.encode(t).ids);
const tl = texts.map((t) => tjsLlama.encode(t).ids);
const disagree = (name, a, b) => {
  let n = 0;
  a.forEach((x, i) => { if (x.join(' ') !== b[i].join(' ')) { n++; console.error(`${name}: line ${i + 1} ${JSON.stringify(texts[i]).slice(0, 60)}\n  A ${x.join(' ')}\n  B ${b[i].join(' ')}`); } });
  console.log(`${name}: ${a.length - n}/${a.length} lines agree`);
  if (n) { console.error('the two references disagree: not writing a reference that is in doubt'); process.exit(1); }
};
disagree('gpt2 gpt-3-encoder vs tokenizers.js', gpt2, tg);
disagree('llama2 llama-tokenizer-js vs tokenizers.js', llama2, tl);

// decode: every encoded line, and prefixes that cut multi-byte characters
const decCases = (all) => {
  const cases = [], ids = all.slice(0, 110).filter((x) => x.length > 0);
  ids.forEach((x) => { cases.push(x); });
  ids.forEach((x) => { if (x.length > 2) cases.push(x.slice(0, Math.ceil(x.length / 2))); if (x.length > 2) cases.push(x.slice(1, x.length - 1)); });
  return cases;
};
const g2dec = decCases(gpt2).concat([[447], [447, 247], [12519, 222], [12519], [25370, 246, 222], [10545, 245]]);
w('gpt2_decode.jsonl', g2dec.map((ids) => JSON.stringify({ ids, text: gpt3.decode(ids) })));
const l2dec = decCases(llama2).concat([[1, 29871, 243], [243, 162, 155, 131], [243, 162, 155], [162, 155, 131, 243], [1, 2, 0]]);
// HF's ByteFallback turns a whole run of byte tokens that is not valid UTF-8 into one U+FFFD per byte;
// tokenizers.js decodes the valid prefix instead, so runs with invalid UTF-8 are left to hand-checked cases in the test.
w('llama2_decode.jsonl', l2dec.filter((ids) => !tjsLlama.decode(ids).includes('\uFFFD')).map((ids) => JSON.stringify({ ids, text: tjsLlama.decode(ids), skip: tjsLlama.decode(ids, { skip_special_tokens: true }) })));
w('bert_decode.jsonl', texts.slice(0, 110).map((t) => { const ids = tjsBert.encode(t).ids; return JSON.stringify({ ids, text: tjsBert.decode(ids), skip: tjsBert.decode(ids, { skip_special_tokens: true }) }); }));

// ---------------------------------------------------------------- Unigram (hand-made model)
const uniVocab = [['<unk>', 0], ['<s>', 0], ['</s>', 0], ['\u2581', -2.0], ['\u2581the', -3.0], ['\u2581t', -4.0], ['he', -4.5], ['h', -5.0],
  ['e', -5.0], ['t', -5.5], ['\u2581a', -4.0], ['a', -5.0], ['b', -5.5], ['ab', -5.2], ['abc', -7.0], ['c', -5.5], ['bc', -5.0],
  ['\u2581ab', -6.0], ['\u2581c', -6.5], ['at', -4.8], ['\u2581cat', -6.0], ['ca', -5.9], ['s', -4.0], ['\u2581s', -4.2], ['x', -6.0],
  ['1', -6.0], ['2', -6.0], ['12', -6.5], ['é', -6.0], ['日', -7.0], ['本', -7.0], ['日本', -8.0], ['\u2581日', -9.0], ['.', -3.0], [',', -3.5]];
const uniJson = {
  version: '1.0', truncation: null, padding: null,
  added_tokens: [0, 1, 2].map((i) => ({ id: i, content: uniVocab[i][0], single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
  normalizer: { type: 'Sequence', normalizers: [{ type: 'NFKC' }, { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' }] },
  pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true },
  post_processor: { type: 'TemplateProcessing', single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
    pair: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }, { Sequence: { id: 'B', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
    special_tokens: { '</s>': { id: '</s>', ids: [2], tokens: ['</s>'] } } },
  decoder: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true },
  model: { type: 'Unigram', unk_id: 0, vocab: uniVocab, byte_fallback: false },
};
fs.writeFileSync(path.join(out, 'unigram/tokenizer.json'), JSON.stringify(uniJson, null, 1) + '\n');
const tjsUni = new Tokenizer(uniJson, {});
const uniTexts = ['the cat', 'thecat', 'abc', 'a bc', 'the  cat sat', 'xyz', 'qq', '12 1 2', 'é日本', '日本 cat', 'cat.', 'ab, c', '', ' ', 'the</s>cat', 'ﬁ', 'Ｃat'];
w('unigram_inputs.jsonl', uniTexts.map((t) => JSON.stringify(t)));
w('unigram.ids', uniTexts.map((t) => tjsUni.encode(t).ids.join(' ')));
// ---------------------------------------------------------------- pipeline variants (tokenizers.js)
// tokenizer.json "heads" (everything but model.vocab / model.merges, which the test fills in from
// ../shared) exercising the Split regexes of LLaMA-3 and Qwen2, ignore_merges, NFC, lstrip/rstrip
// added tokens, Metaspace (prepend_scheme first), RobertaProcessing, Whitespace/Digits, StripAccents.
fs.mkdirSync(path.join(out, 'variants'), { recursive: true });
const l3re = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const qwre = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const at = (id, content, o = {}) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true, ...o });
const bpeModel = (o = {}) => ({ type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ...o });
const blNoRe = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false };
const variants = [
  { name: 'gpt2_llama3', base: 'gpt2', head: { added_tokens: [at(50256, '<|endoftext|>'), at(50257, '<mask>', { lstrip: true }), at(50258, '[END]', { rstrip: true })],
    normalizer: null, pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: l3re }, behavior: 'Isolated', invert: false }, blNoRe] },
    post_processor: { type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<|endoftext|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<|endoftext|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<|endoftext|>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<|endoftext|>': { id: '<|endoftext|>', ids: [50256], tokens: ['<|endoftext|>'] } } },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true }, model: bpeModel({ ignore_merges: true }) },
    extra: ['Hello <mask> world<mask>', 'x [END]   y', 'a<mask>b [END]', "I'M HE'S 12345678 x\r\n\n  y"] },
  { name: 'gpt2_qwen2', base: 'gpt2', head: { added_tokens: [at(50256, '<|endoftext|>')], normalizer: { type: 'NFC' },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: qwre }, behavior: 'Isolated', invert: false }, blNoRe] },
    post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false }, decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: bpeModel() }, extra: ['e\u0301 composed by NFC', '1234567890'] },
  { name: 'gpt2_roberta', base: 'gpt2', head: { added_tokens: [at(50256, '<|endoftext|>')], normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    post_processor: { type: 'RobertaProcessing', sep: ['<|endoftext|>', 50256], cls: ['<|endoftext|>', 50256], trim_offsets: true, add_prefix_space: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true }, model: bpeModel() }, extra: [] },
  { name: 'llama2_metaspace', base: 'llama2', head: { added_tokens: lj.added_tokens, normalizer: null,
    pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: false },
    post_processor: lj.post_processor, decoder: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: false },
    model: { ...lj.model, vocab: undefined, merges: undefined } }, extra: [] },
  { name: 'bert_nfd_digits', base: 'bert', head: { added_tokens: [...bertJson.added_tokens, at(30522, 'yes sir', { normalized: true, special: false }), at(30523, 'HELLO', { special: false })],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFD' }, { type: 'StripAccents' }, { type: 'Lowercase' }] },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Whitespace' }, { type: 'Digits', individual_digits: true }] },
    post_processor: { type: 'BertProcessing', sep: ['[SEP]', 102], cls: ['[CLS]', 101] }, decoder: bertJson.decoder,
    model: { ...bertJson.model, vocab: undefined } }, extra: ['YES SIR, now', 'yes sir', 'HELLO hello Hello', 'Yes Sír!', 'noyes sirs'] },
  { name: 'bert_split_invert', base: 'bert', head: { added_tokens: bertJson.added_tokens, normalizer: { type: 'Lowercase' },
    pre_tokenizer: { type: 'Split', pattern: { Regex: '\\p{L}+|\\p{N}+|[^\\s\\p{L}\\p{N}]+' }, behavior: 'Removed', invert: true },
    post_processor: bertJson.post_processor, decoder: bertJson.decoder, model: { ...bertJson.model, vocab: undefined } }, extra: ['abc!!def??12x', 'a.b,c'] },
];
const bases = { gpt2: { vocab: enc, merges: bpe }, llama2: { vocab: lj.model.vocab, merges: lj.model.merges }, bert: { vocab: bvocab } };
for (const v of variants) {
  const head = { version: '1.0', truncation: null, padding: null, ...v.head };
  head.model = JSON.parse(JSON.stringify(head.model));
  fs.writeFileSync(path.join(out, 'variants', v.name + '.json'), JSON.stringify(head, null, 1) + '\n');
  const full = JSON.parse(JSON.stringify(head));
  Object.assign(full.model, bases[v.base]);
  const tk = new Tokenizer(full, {});
  const vt = [...texts, ...v.extra];
  // tokenizers.js's Whitespace uses JS's ASCII-only \w and its StripAccents drops every mark (HF: \w of
  // Oniguruma, Unicode; only Mn): for that variant keep the lines that are ASCII after NFD and Mn removal
  // (the test checks the others by hand).
  if (v.name === 'bert_nfd_digits') {
    vt.splice(0, vt.length, ...vt.filter((t) => /^[\x00-\x7f]*$/.test(t.normalize('NFD').replace(/\p{Mn}/gu, ''))));
    w(`variants/${v.name}.inputs.jsonl`, vt.map((t) => JSON.stringify(t))); // instead of inputs.jsonl + extra
  } else w(`variants/${v.name}.extra.jsonl`, v.extra.map((t) => JSON.stringify(t))); // the inputs are inputs.jsonl + these
  w(`variants/${v.name}.ids`, vt.map((t) => tk.encode(t).ids.join(' ')));
  // no pairs where no template is involved: tokenizers.js's ByteLevel post-processor drops the pair's second text
  if (v.name !== 'gpt2_qwen2') w(`variants/${v.name}.pair.ids`, pairs.map(([a, b]) => { const e = tk.encode(a, { text_pair: b, return_token_type_ids: true }); return e.ids.join(' ') + '\t' + (e.token_type_ids || []).join(' '); }));
}

console.log(`wrote ${texts.length} texts, ${pairs.length} pairs, ${uniTexts.length} unigram texts to ${out}`);
