"""A tiny randomly initialised chat model, saved like a real checkpoint.

Real transformers code on small weights: a byte-level tokenizer (any text round-trips),
a ChatML template like SmolLM2's, and a 2-layer Llama. Building it takes about a second.
"""

from __future__ import annotations

from pathlib import Path

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_model(out_dir: str | Path, seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out_dir = Path(out_dir)
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    backend = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    tokenizer.chat_template = CHATML
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        # Wider than the 0.02 default so a random model gives varied, input-dependent
        # tokens instead of one repeated special token.
        initializer_range=0.2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def build_scripted_model(out_dir: str | Path, reply: str = "Score: 4") -> Path:
    """A real checkpoint that answers every chat with `reply` (then its end token).

    A judge whose verdict is known in advance, so a test can check what happens to it
    downstream (parsed, recorded, paired) through real generation code, local or served.
    The tiny model's layers are zeroed, so each position's output depends only on its own
    token: a bigram table in the embeddings and the output head, chained from the newline
    that ends the ChatML generation prompt through the reply to the end token. Each
    character of `reply` must appear once.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out_dir = Path(out_dir)
    build_tiny_model(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(out_dir)
    chain = [tokenizer("\n", add_special_tokens=False)["input_ids"][0]]
    chain += tokenizer(reply, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    if len(set(chain)) != len(chain):
        raise ValueError(f"each token of {reply!r} must appear once")
    model = AutoModelForCausalLM.from_pretrained(out_dir)
    with torch.no_grad():
        for layer in model.model.layers:  # zero the residual updates: output = own embedding
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embed = torch.zeros_like(model.model.embed_tokens.weight)
        head = torch.zeros_like(embed)
        for slot, (current, following) in enumerate(zip(chain, chain[1:])):
            embed[current, slot] = 1.0
            head[following, slot] = 50.0  # ~400 after the final norm: even sampling follows
        model.model.embed_tokens.weight = torch.nn.Parameter(embed)
        model.lm_head.weight = torch.nn.Parameter(head)
    model.config.tie_word_embeddings = False
    model.save_pretrained(out_dir, safe_serialization=True)
    return out_dir
