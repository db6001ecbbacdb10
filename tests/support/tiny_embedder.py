"""A tiny random sentence-transformers model built locally (no hub): BERT with one 32-wide layer, the
bundled all-MiniLM-L6-v2 tokenizer, mean pooling and normalisation. Different texts get different
vectors; nothing about their meaning is learned."""

from __future__ import annotations

from pathlib import Path


def build_tiny_embedder(out_dir: str | Path, *, hidden: int = 32, seed: int = 0) -> Path:
    """Save the model to ``out_dir`` (a folder ``SentenceTransformer(out_dir)`` loads) and return it."""
    from vidspan.models.torchvision_compat import ensure_torchvision

    ensure_torchvision()
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from vidspan.library.embed import _model_dir

    out = Path(out_dir)
    bert = out / "bert"
    torch.manual_seed(seed)
    tokenizer = BertTokenizerFast(tokenizer_file=str(_model_dir() / "tokenizer.json"))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(bert)
    tokenizer.save_pretrained(bert)
    transformer = Transformer(str(bert), max_seq_length=64)
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    SentenceTransformer(modules=[transformer, pooling, Normalize()], device="cpu").save(str(out))
    return out
