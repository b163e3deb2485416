#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/NAME/ (committed; rerun after changing a harness's framing).

Small crafted files, one or a few per format, in each harness's input layout (fuzz/fuzz_NAME.c):
framed inputs join their parts with SEP, as fuzz/fuzz_util.h splits them. Standard library only."""
import json, os, struct, sys

SEP = b"\n--8<--\n"
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
TESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "tok")


def put(name, seed, data):
    d = os.path.join(ROOT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, seed), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def js(o):
    return json.dumps(o).encode()


def safetensors(tensors, meta=None):
    """tensors: [(name, dtype, shape, raw bytes)]"""
    hdr, off, blob = {}, 0, b""
    if meta is not None:
        hdr["__metadata__"] = meta
    for name, dt, shape, raw in tensors:
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        blob += raw
    h = js(hdr)
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blob


def f32(*v):
    return struct.pack("<%df" % len(v), *v)


def gguf_str(s):
    s = s.encode()
    return struct.pack("<Q", len(s)) + s


def gguf():
    kv = [("general.architecture", 8, gguf_str("llama")), ("general.alignment", 4, struct.pack("<I", 32)),
          ("llama.block_count", 4, struct.pack("<I", 1)), ("general.rate", 6, struct.pack("<f", 0.5)),
          ("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 2) + gguf_str("a") + gguf_str("b")),
          ("general.flag", 7, b"\x01"), ("general.big", 10, struct.pack("<Q", 7))]
    tensors = [("token_embd.weight", 0, [4, 2], f32(*range(8))), ("output_norm.weight", 1, [4], struct.pack("<4e", 1, 1, 1, 1))]
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv))
    for k, t, v in kv:
        out += gguf_str(k) + struct.pack("<I", t) + v
    off, data = 0, b""
    for name, t, ne, raw in tensors:
        out += gguf_str(name) + struct.pack("<I", len(ne)) + struct.pack("<%dQ" % len(ne), *ne) + struct.pack("<IQ", t, off)
        data += raw + b"\0" * (-len(raw) % 32)
        off = len(data)
    out += b"\0" * (-len(out) % 32)
    return out + data


def llama2c(shared=True):
    dim, hid, L, nh, nkv, vocab, seq = 8, 16, 1, 2, 1, 12, 4
    kv = dim // nh * nkv
    n = vocab * dim + L * dim + L * dim * dim + 2 * L * kv * dim + L * dim * dim + L * dim + 3 * L * hid * dim + dim
    n += seq * (dim // nh) + (0 if shared else vocab * dim)
    return struct.pack("<7i", dim, hid, L, nh, nkv, vocab if shared else -vocab, seq) + f32(*[(i % 7) * 0.1 for i in range(n)])


def pb_varint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def pb_bytes(field, b):
    return pb_varint(field << 3 | 2) + pb_varint(len(b)) + b


def spm(model_type, pieces, byte_fallback=False):
    out = b""
    for s, score, typ in pieces:
        p = pb_bytes(1, s.encode()) + pb_varint(2 << 3 | 5) + struct.pack("<f", score) + pb_varint(3 << 3) + pb_varint(typ)
        out += pb_bytes(1, p)
    trainer = pb_varint(3 << 3) + pb_varint(model_type)
    if byte_fallback:
        trainer += pb_varint(35 << 3) + pb_varint(1)
    out += pb_bytes(2, trainer)
    out += pb_bytes(3, pb_bytes(1, b"identity") + pb_varint(3 << 3) + pb_varint(1) + pb_varint(4 << 3) + pb_varint(1))
    return out


def main():
    # safetensors
    put("safetensors", "f32", safetensors([("a.weight", "F32", [2, 2], f32(1, 2, 3, 4)), ("b", "F16", [2], struct.pack("<2e", 1, -2))],
                                          {"format": "pt"}))
    put("safetensors", "mixed", safetensors([("x", "BF16", [1, 2], b"\x80\x3f\x00\x40"), ("y", "I64", [1], struct.pack("<q", -3)),
                                             ("z", "BOOL", [2], b"\x01\x00"), ("e", "F32", [0], b""), ("i8", "I8", [3], b"\x01\x02\xff")]))
    # sharded folder: index + shards "a", "b"
    idx = js({"metadata": {"total_size": 24}, "weight_map": {"w1": "a", "w2": "b", "w3": "a"}})
    put("safetensors_index", "two_shards", idx + SEP + safetensors([("w1", "F32", [1], f32(1)), ("w3", "F32", [2], f32(2, 3))]) + SEP
        + safetensors([("w2", "F32", [2], f32(4, 5))]))
    # config.json of each family
    cfgs = {
        "gpt2": {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": 64, "n_embd": 16, "n_layer": 2, "n_head": 2,
                 "n_positions": 32, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new"},
        "llama": {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 64, "hidden_size": 16, "num_hidden_layers": 2,
                  "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 32, "max_position_embeddings": 64,
                  "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": False, "rope_scaling": None},
        "mistral": {"model_type": "mistral", "architectures": ["MistralForCausalLM"], "vocab_size": 64, "hidden_size": 16,
                    "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 1, "intermediate_size": 32,
                    "max_position_embeddings": 64, "sliding_window": 16, "hidden_act": "silu"},
        "qwen2": {"model_type": "qwen2", "architectures": ["Qwen2ForSequenceClassification"], "vocab_size": 64, "hidden_size": 16,
                  "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2, "intermediate_size": 32,
                  "max_position_embeddings": 64, "use_sliding_window": False, "num_labels": 3, "pad_token_id": 0, "hidden_act": "silu"},
        "bert": {"model_type": "bert", "architectures": ["BertForSequenceClassification"], "vocab_size": 64, "hidden_size": 16,
                 "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 64,
                 "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu", "id2label": {"0": "neg", "1": "pos"}},
        "roberta": {"model_type": "roberta", "architectures": ["RobertaForSequenceClassification"], "vocab_size": 64, "hidden_size": 16,
                    "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 66,
                    "type_vocab_size": 1, "pad_token_id": 1, "problem_type": "regression", "num_labels": 1},
        "deberta-v2": {"model_type": "deberta-v2", "architectures": ["DebertaV2ForSequenceClassification"], "vocab_size": 64,
                       "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32,
                       "max_position_embeddings": 64, "relative_attention": True, "position_buckets": 8, "max_relative_positions": -1,
                       "pos_att_type": ["p2c", "c2p"], "norm_rel_ebd": "layer_norm", "share_att_key": True,
                       "position_biased_input": False, "type_vocab_size": 0, "pooler_hidden_act": "gelu"},
    }
    for name, c in cfgs.items():
        put("model_config", name, js(c))
    # PEFT adapter_config.json (+ weights)
    acfg = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 4, "lora_alpha": 8, "lora_dropout": 0.05, "bias": "none",
            "target_modules": ["q_proj", "v_proj"], "rank_pattern": {"q_proj": 2, "layers.1.mlp.up_proj": 8},
            "alpha_pattern": {"v_proj": 4.5}, "use_rslora": False, "modules_to_save": ["score"], "base_model_name_or_path": "x"}
    put("peft_config", "config_only", js(acfg))
    put("peft_config", "gpt2_string_targets", js({"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": "c_attn",
                                                  "fan_in_fan_out": True, "use_rslora": True}))
    w = safetensors([("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", "F32", [2, 4], f32(*range(8))),
                     ("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", "F32", [4, 2], f32(*range(8))),
                     ("base_model.model.score.modules_to_save.default.weight", "F32", [1, 4], f32(1, 2, 3, 4))])
    put("peft_config", "with_weights", js(acfg) + SEP + w)
    # tokenizer.json (the small ones of tests/data)
    # tests/data/tok/variants/*.json are tokenizer.json heads without vocabulary: give each a small one
    # (dense ids; the added tokens renumbered after it)
    for v in sorted(x for x in os.listdir(os.path.join(TESTS, "variants")) if x.endswith(".json")):
        with open(os.path.join(TESTS, "variants", v)) as f:
            text = f.read()
        if v.startswith("bert"):
            specials = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103}
            words = [chr(c) for c in range(97, 123)] + ["##" + chr(c) for c in range(97, 123)] + list("0123456789!,.?'")
            vocab = dict(specials)
            free = [i for i in range(104) if i not in specials.values()]
            for i, w in zip(free, words + ["[unused%d]" % k for k in range(len(free))]):
                vocab[w] = i
            text = text.replace("30522", "104").replace("30523", "105")
            merges = None
        elif v.startswith("gpt2"):
            bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
            cs, n = bs[:], 0
            for b in range(256):
                if b not in bs:
                    bs.append(b)
                    cs.append(256 + n)
                    n += 1
            vocab = {chr(c): i for i, c in enumerate(cs)}
            text = text.replace("50256", "256").replace("50257", "257").replace("50258", "258")
            merges = ["h e", "l l", "\u0120 w", "o r"]
            for i, m in enumerate(merges):
                vocab[m.replace(" ", "")] = 259 + i
        else:  # llama2 metaspace, byte fallback
            vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
            for b in range(256):
                vocab["<0x%02X>" % b] = 3 + b
            for w in ["\u2581", "h", "e", "l", "o", "w", "r", "d", "\u2581h", "ll"]:
                vocab[w] = len(vocab)
            merges = ["\u2581 h", "l l"]
        d = json.loads(text)
        d["model"]["vocab"] = vocab
        if merges is not None:
            d["model"]["merges"] = merges
        put("tokenizer_json", v[:-5], js(d) + SEP + "Hello, world! 123 \u00fcn\u00ef \u65e5\u672c HELLO [END]".encode())
    with open(os.path.join(TESTS, "unigram", "tokenizer.json"), "rb") as f:
        put("tokenizer_json", "unigram", f.read() + SEP + b"hello world")
    # SentencePiece tokenizer.model
    pieces = [("<unk>", 0, 2), ("<s>", 0, 3), ("</s>", 0, 3), ("\u2581", -1, 1), ("\u2581h", -2, 1), ("h", -3, 1), ("e", -3, 1),
              ("l", -3, 1), ("o", -3, 1), ("\u2581he", -2.5, 1), ("ll", -2.5, 1), ("<0x41>", 0, 6)]
    put("tokenizer_model", "bpe", spm(2, pieces, True) + SEP + b"hello Aa")
    put("tokenizer_model", "unigram", spm(1, pieces) + SEP + b"hell oh")
    # vocab.json + merges.txt / encoder.json + vocab.bpe
    voc = {"<|endoftext|>": 0, "h": 1, "e": 2, "l": 3, "o": 4, "\u0120": 5, "w": 6, "r": 7, "d": 8, "he": 9, "ll": 10, "\u0120w": 11}
    mer = "#version: 0.2\nh e\nl l\n\u0120 w\n"
    put("vocab_bpe", "vocab_merges", b"\0" + js(voc) + SEP + mer.encode() + SEP + b"hello world")
    put("vocab_bpe", "encoder_bpe", b"\1" + js(voc) + SEP + mer.encode())
    put("vocab_txt", "bert", b"[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\n##s\n!\n\xe6\x97\xa5\n" + SEP + b"Hello worlds! \xe6\x97\xa5")
    # tokenizer_config.json beside each of the harness's three tokenizers
    tcs = [{"cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]", "unk_token": "[UNK]", "mask_token": "[MASK]",
            "do_lower_case": True, "model_max_length": 512},
           {"bos_token": {"content": "<s>", "lstrip": False}, "eos_token": "</s>", "added_tokens_decoder":
            {"13": {"content": "<extra>", "special": True}}, "add_prefix_space": True},
           {"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": True, "bos_token": "<s>", "eos_token": "</s>",
            "unk_token": "<unk>", "pad_token": None}]
    for i, tc in enumerate(tcs):
        put("tokenizer_config", "tok%d" % i, bytes([i]) + js(tc) + SEP + b"hello <s> world")
    # GGUF, llama2.c
    put("gguf", "v3", gguf())
    put("llama2c", "shared", llama2c(True))
    put("llama2c", "unshared", llama2c(False))
    # training data: byte 0 = format (0 jsonl, 1 text, 2 tokens; +4 custom fields), byte 1 = max_len
    jl = "\n".join(json.dumps({"query": "What is %d+%d?" % (i, i), "response": "%d" % (2 * i)}) for i in range(3)) + "\n"
    put("train_data", "jsonl", b"\x00\xf0" + jl.encode())
    put("train_data", "jsonl_fields", b"\x04\x10" + (json.dumps({"instruction": "say hi", "output": "hi"}) + "\n").encode())
    put("train_data", "text", b"\x01\x08" + b"The quick brown fox jumps over the lazy dog.\n" * 3)
    put("train_data", "tokens", b"\x02\x10" + b'{"input_ids": [1, 2, 3, 4], "labels": [-100, 2, 3, 4]}\n{"input_ids": [5, 6]}\n')
    # GLUE / generic: byte 0 = loader (0 GLUE TSV, 1 AdvGLUE, 2 generic), byte 1 = task or switches
    put("glue", "sst2", b"\x03\x01sentence\tlabel\ngood movie\t1\nbad film\t0\nfine\t1\n")
    put("glue", "cola", b"\x00\x00gj04\t1\t\tOur friends won't buy this analysis.\ngj04\t0\t*\tThey drank the pub.\n")
    put("glue", "mnli", b"\x00\x05index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
        b"sentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n0\t1\t1n\tgov\t(a)\t(b)\t(a)\t(b)\tA man.\tA person.\t"
        b"entailment\tentailment\n")
    put("glue", "stsb", b"\x00\x04index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
        b"0\tmain\tx\t2012\t1\tnone\tnone\tA plane.\tAn air plane.\t5.000\n")
    put("glue", "advglue", b"\x01\x01" + js({"sst2": [{"idx": 0, "label": 1, "sentence": "ok"}],
                                              "qqp": [{"idx": 3, "label": 0, "question1": "a?", "question2": "b?"}]}))
    put("glue", "csv", b"\x17\x00" + b'text,label\n"a, quoted ""x""",pos\nplain,neg\n')
    put("glue", "tsv_pair", b"\x02\x22" + b"text\ttext2\tlabel\nA\tB\t1\nC\tD\t0\n")
    put("glue", "jsonl_regression", b"\x02\x14" + b'{"text": "a", "label": 0.5}\n{"text": "b", "label": 2}\n')
    put("glue", "csv_noheader", b"\x02\x45" + b"hello,negative\nbye,positive\n")
    # benchmarks: byte 0 = bench (0 gsm8k, 1 math, 2 humaneval, 3 mbpp); data SEP completions
    put("bench", "gsm8k", b"\x00" + js({"question": "2+2?", "answer": "It is 4.\n#### 4"}) + b"\n" +
        js({"question": "1,000+1?", "answer": "#### 1,001"}) + SEP + js({"index": 0, "completion": "The answer is 4."}) + b"\n" +
        js({"index": 1, "completion": "#### 1001"}))
    put("bench", "math", b"\x01" + js({"problem": "x?", "solution": "So $\\boxed{\\frac{1}{2}}$."}) + b"\n" +
        js({"problem": "y?", "solution": "...", "answer": "\\sqrt{2}"}) + SEP +
        js({"index": 0, "completion": "\\boxed{0.5}"}) + b"\n" + js({"index": 1, "completion": "$\\boxed{\\sqrt 2}$"}))
    put("bench", "humaneval", b"\x02" + js({"task_id": "HumanEval/0", "prompt": "def f(x):\n", "canonical_solution": "    return x\n",
                                            "test": "def check(c):\n    assert c(1) == 1\n", "entry_point": "f"}) + SEP +
        js({"task_id": "HumanEval/0", "completion": "    return x\n"}))
    put("bench", "mbpp", b"\x03" + js({"task_id": 11, "text": "Return 1.", "code": "def f():\n    return 1",
                                       "test_list": ["assert f() == 1"], "test_setup_code": ""}) + SEP +
        js({"task_id": 11, "completion": "def f(): return 1"}))
    # MT-Bench: questions SEP answers SEP judge prompts SEP judgments
    q = [{"question_id": 81, "category": "writing", "turns": ["Write.", "Rewrite."]},
         {"question_id": 111, "category": "math", "turns": ["1+1?", "2+2?"], "reference": ["2", "4"]}]
    a = [{"question_id": 81, "choices": [{"index": 0, "turns": ["A poem.", "Another."]}]}, {"question_id": 111, "turns": ["2", "4"]}]
    jp = [{"name": n, "type": "single", "system_prompt": "You are a judge.", "prompt_template": t, "output_format": "[[rating]]"}
          for n, t in [("single-v1", "[Q]{question}[A]{answer}"), ("single-math-v1", "{question}{ref_answer_1}{answer}"),
                       ("single-v1-multi-turn", "{question_1}{answer_1}{question_2}{answer_2}"),
                       ("single-math-v1-multi-turn", "{question_1}{ref_answer_1}{answer_1}{question_2}{ref_answer_2}{answer_2}")]]
    jd = [{"question_id": 81, "turn": 1, "judgment": "Good. Rating: [[8]]"}, {"question_id": 111, "turn": 2, "judgment": "[5.5]"}]
    lines = lambda xs: b"\n".join(js(x) for x in xs) + b"\n"
    put("mtbench", "full", lines(q) + SEP + lines(a) + SEP + lines(jp) + SEP + lines(jd))
    put("mtbench", "default_templates", lines(q) + SEP + lines(a) + SEP + SEP + lines(jd))
    # --config: byte 0 bit 0 = YAML, bits 1.. = options given on the command line
    put("cli_config", "json", b"\x00" + js({"out": "runs/a", "max_steps": 100, "lr": 0.0002, "verbose": True, "resume": True,
                                              "lora-r": 16}))
    put("cli_config", "yaml", b"\x01# a run\nout: runs/b\nmax-steps: 5\nlr: 3e-4\nshuffle: no\nresume: latest\nmodel: \"m\"\n")
    put("cli_config", "yaml_given", b"\x0b---\nout: x\nlora_r: 2\n...\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
