// GPT-2 byte-level BPE tokenizer for Node, encoding and decoding like HF tokenizers.
//
//   const tok = await loadTokenizer('/models/gpt2')      // tokenizer.json or vocab.json + merges.txt
//   const ids = tok.encode('Hello world<|endoftext|>')   // Int32Array [15496, 995, 50256]
//   tok.decode(ids)                                      // 'Hello world<|endoftext|>'
//   const stream = tok.createDecoder()                   // for generated tokens, one at a time
//   for (const id of ids) process.stdout.write(stream.push(id))
//   process.stdout.write(stream.flush())
//
// Why not @huggingface/tokenizers (the pure-JS port): it loads these files and gives the same ids,
// but ran at about 1 MB/s per core on this project's corpus, against the 5 MB/s per core that the
// dataset import needs; this implementation runs at 20-40 (native/bench/tokenize-bench.ts).
// Identity with HF (tokenizers 0.23, transformers 5.17) is pinned by test/fixtures/tokenizer-golden.json.

export { loadTokenizer, findTokenizerFiles, TOKENIZER_IMPL_VERSION, type TokenizerFiles } from './load.ts'
export { Tokenizer, type TokenizerKind, type DecodeOptions, type StreamDecoder } from './tokenizer.ts'
export { TokenizerFileError } from './errors.ts'
export { GPT2_SPLIT_PATTERN, splitGpt2 } from './pretokenize.ts'
export type { AddedToken } from './added-tokens.ts'
