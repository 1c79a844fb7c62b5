"""A tiny Idefics3 checkpoint (SmolVLM's architecture: SigLIP tower, pixel-shuffle connector, Llama
text model) with random weights, made locally (no hub download): config, safetensors, a byte-level BPE
tokenizer trained with ``tokenizers`` on a small text plus the model's special tokens, its image
processor, and a chat template that writes ``<image>`` where a message has an image part.

Why Idefics3: vLLM's CPU build runs it without torchvision. This project leaves torchvision out (PyPI's
build does not load beside the CPU torch), and vLLM's Qwen2-VL, Qwen2.5-VL and LLaVA modules import it
(LLaVA through Pixtral), as does transformers 5's Qwen2VLProcessor (its video processor). Sizes are for
2 cores: a 2-layer Llama of hidden size 128 (head dim 32, the smallest vLLM's CPU attention takes), a 1-layer SigLIP tower of width 32 on 56x56 images (patch 14:
16 patches, pixel shuffle 2: 4 image tokens per image), no image splitting.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}"
    "{% if message['content'] is string %}: {{ message['content'] }}"
    "{% else %}{% if message['content'][0]['type'] == 'image' %}:{% else %}: {% endif %}"
    "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% elif part['type'] == 'image' %}<image>{% endif %}{% endfor %}{% endif %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>", "<image>",
           "<global-img>", *(f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7))]
IMAGE_SIZE = 56
CORPUS = (
    "Solve the problem. Put only the final answer inside \\boxed{}. The answer is 42. "
    "What is the area of the triangle in the figure? Choices: (A) 3 (B) 4 (C) 5 (D) 6. "
    "Which of the following is correct? Answer with the option's letter from the given choices directly. "
    "You are a helpful assistant. How many objects are red? The value of x is 1.5 and y = 2x + 3. "
    "0 1 2 3 4 5 6 7 8 9 10 11 12 + - * / = ( ) [ ] { } , . ? ! : ; A B C D E a b c d e "
)
VOCAB = 384  # trained tokens plus the special ones


def build_tokenizer(out: Path) -> int:
    """A byte-level BPE tokenizer with Qwen2-VL's special tokens, saved as tokenizer.json; returns its size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([CORPUS] * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<end_of_utterance>", pad_token="<|endoftext|>",
                                   unk_token=None, additional_special_tokens=SPECIAL[1:])
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    return len(fast)


def build_tiny_vlm(out: Path, seed: int = 0) -> Path:
    """Writes the checkpoint folder ``out`` (config, weights, tokenizer, processor); returns it."""
    from transformers import (
        AutoTokenizer,
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessorPil,
        Idefics3Processor,
    )

    out.mkdir(parents=True, exist_ok=True)
    size = build_tokenizer(out)
    added = {t["content"]: t["id"] for t in json.loads((out / "tokenizer.json").read_text())["added_tokens"]}
    eos, pad = added["<end_of_utterance>"], added["<|endoftext|>"]
    config = Idefics3Config(
        text_config={"model_type": "llama", "vocab_size": max(VOCAB, size), "hidden_size": 128,
                     "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
                     "num_key_value_heads": 2, "max_position_embeddings": 4096, "tie_word_embeddings": False,
                     "bos_token_id": added["<|im_start|>"], "eos_token_id": eos, "pad_token_id": pad},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": IMAGE_SIZE, "patch_size": 14},
        scale_factor=2, image_token_id=added["<image>"], tie_word_embeddings=False, pad_token_id=pad,
    )
    torch.manual_seed(seed)
    model = Idefics3ForConditionalGeneration(config).to(torch.float32).eval()
    with torch.no_grad():  # random init at 0.02 gives near-uniform next-token laws: spread them out a little
        model.lm_head.weight.normal_(0.0, 0.5)
    model.generation_config.eos_token_id = eos
    model.save_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    images = Idefics3ImageProcessorPil(do_image_splitting=False, size={"longest_edge": IMAGE_SIZE},
                                       max_image_size={"longest_edge": IMAGE_SIZE})
    processor = Idefics3Processor(image_processor=images, tokenizer=tokenizer, image_seq_len=4,
                                  chat_template=CHAT_TEMPLATE)
    processor.save_pretrained(out)
    return out
