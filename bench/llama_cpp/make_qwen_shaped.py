"""A Qwen2.5-0.5B-shaped GGUF with random weights, quantized to Q4_K_M by llama.cpp's own
quantizer, for `shammie-bench local --gguf` (no real Llama/Qwen2 GGUF can be fetched here:
the machines reach package registries only, and none ships one).

Speed does not depend on the weights' values, only on the shapes and quantization types,
which are Qwen2.5 0.5B's: hidden 896, 24 layers, 14 query heads and 2 key/value heads of
64, MLP 4864, q/k/v biases, vocabulary 151,936 with the output head tied to the embedding
table, RoPE base 1e6; Q4_K_M as llama.cpp assigns it (Q5_0/Q8_0 fallbacks where a row of
896 is not a multiple of 256, Q4_K/Q6_K for the MLP's down projection). The vocabulary is
byte-level (256 bytes, Qwen's three special tokens, the rest unused fillers), so text
tokenizes to about one token per byte; the benchmark feeds both engines the same token ids.

Two steps, two environments (the `gguf` writer and llama-cpp-python live in different venvs):

    /work/venv-torch/bin/python bench/llama_cpp/make_qwen_shaped.py f16 OUT_DIR
    /work/venv-llama/bin/python bench/llama_cpp/make_qwen_shaped.py q4_k_m OUT_DIR

writes OUT_DIR/qwen2.5-0.5b-shaped-f16.gguf, then OUT_DIR/qwen2.5-0.5b-shaped-q4_k_m.gguf.
"""
import os
import sys

import numpy as np

HIDDEN, LAYERS, HEADS, KV_HEADS, FFN, VOCAB = 896, 24, 14, 2, 4864, 151936
HEAD_DIM = HIDDEN // HEADS


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def write_f16(path):
    import gguf

    rng = np.random.default_rng(7)
    b2u = bytes_to_unicode()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    merges = ["Ġ t", "h e", "Ġt he", "i n", "e r", "Ġ a", "o u", "Ġ s", "a n", "Ġ b", "Ġa n", "e s"]
    tokens = [b2u[b] for b in range(256)] + specials + [m.replace(" ", "") for m in merges]
    types = [1] * 256 + [3] * len(specials) + [1] * len(merges)
    while len(tokens) < VOCAB:
        tokens.append(f"<|filler_{len(tokens)}|>")
        types.append(5)  # unused

    def mat(out_f, in_f):
        return (rng.standard_normal((out_f, in_f), dtype=np.float32) / np.sqrt(in_f)).astype(np.float16)

    def norm(n):
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    w = gguf.GGUFWriter(path, "qwen2")
    w.add_name("qwen2.5-0.5b-shaped-random")
    w.add_context_length(32768)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(1000000.0)
    w.add_file_type(1)  # mostly F16
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(tokens.index("<|endoftext|>"))
    w.add_eos_token_id(tokens.index("<|im_end|>"))
    w.add_add_bos_token(False)
    w.add_tensor("token_embd.weight", (0.05 * rng.standard_normal((VOCAB, HIDDEN), dtype=np.float32)).astype(np.float16))
    for i in range(LAYERS):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", norm(HIDDEN))
        w.add_tensor(p + "attn_q.weight", mat(HEADS * HEAD_DIM, HIDDEN))
        w.add_tensor(p + "attn_k.weight", mat(KV_HEADS * HEAD_DIM, HIDDEN))
        w.add_tensor(p + "attn_v.weight", mat(KV_HEADS * HEAD_DIM, HIDDEN))
        w.add_tensor(p + "attn_q.bias", (0.1 * rng.standard_normal(HEADS * HEAD_DIM)).astype(np.float32))
        w.add_tensor(p + "attn_k.bias", (0.1 * rng.standard_normal(KV_HEADS * HEAD_DIM)).astype(np.float32))
        w.add_tensor(p + "attn_v.bias", (0.1 * rng.standard_normal(KV_HEADS * HEAD_DIM)).astype(np.float32))
        w.add_tensor(p + "attn_output.weight", mat(HIDDEN, HEADS * HEAD_DIM))
        w.add_tensor(p + "ffn_norm.weight", norm(HIDDEN))
        w.add_tensor(p + "ffn_gate.weight", mat(FFN, HIDDEN))
        w.add_tensor(p + "ffn_up.weight", mat(FFN, HIDDEN))
        w.add_tensor(p + "ffn_down.weight", mat(HIDDEN, FFN))
    w.add_tensor("output_norm.weight", norm(HIDDEN))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print("wrote", path, os.path.getsize(path), "bytes")


def quantize(src, dst):
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), params)
    assert rc == 0, f"llama_model_quantize returned {rc}"
    print("wrote", dst, os.path.getsize(dst), "bytes")


if __name__ == "__main__":
    step, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    f16 = os.path.join(out, "qwen2.5-0.5b-shaped-f16.gguf")
    if step == "f16":
        write_f16(f16)
    else:
        quantize(f16, os.path.join(out, "qwen2.5-0.5b-shaped-q4_k_m.gguf"))
