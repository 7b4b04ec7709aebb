"""Attribution correctness on a model whose answer depends on one known word.

The model is a causal bag of embeddings: the logits at a position are a linear map of
the sum of the embeddings up to it. Only the tokens of the word "gas" carry a direction
the gold label's logit reads, and strongly; every other token (the mask token
included) is near zero. Whatever the method, "gas" must get the top attribution.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn
from transformers import AutoTokenizer
from transformers.modeling_outputs import CausalLMOutput

from langchain_selfamplify import SLM, MCQExample, RationaleGenerator
from langchain_selfamplify.rationales.absence import mask_token_id
from langchain_selfamplify.rationales.base import METHODS

EXAMPLE = MCQExample(
    id="dep", question="Which gas do green plants absorb from the air at noon?",
    choices={"A": "carbon dioxide", "B": "oxygen", "C": "helium", "D": "neon"}, answer="A",
)
ATTRIBUTION_METHODS = sorted(name for name, cls in METHODS.items()
                             if name not in ("self_topk", "ph_cot"))


class KeywordDependentModel(nn.Module):
    """Causal bag of embeddings; the gold label's logit counts the key tokens."""

    def __init__(self, vocab: int, key_tokens: list[int], gold_token: int, mask_id: int):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(vocab, 4)
        self.head = nn.Linear(4, vocab, bias=False)
        with torch.no_grad():
            self.embed.weight.normal_(0, 0.01)
            self.embed.weight[:, 0] = 0.0
            self.embed.weight[key_tokens, 0] = 1.0
            self.embed.weight[mask_id] = 0.0
            self.head.weight.normal_(0, 0.01)
            self.head.weight[:, 0] = 0.0
            self.head.weight[gold_token, 0] = 5.0
        self.config = SimpleNamespace(max_position_embeddings=1024, name_or_path="keyword")
        self.generation_config = SimpleNamespace(eos_token_id=None)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed

    def forward(self, input_ids=None, inputs_embeds=None, attention_mask=None,
                position_ids=None, logits_to_keep=0, cache=None, use_cache=None):
        x = self.embed(input_ids) if inputs_embeds is None else inputs_embeds
        if attention_mask is not None:
            x = x * attention_mask[..., None].to(x.dtype)
        logits = self.head(x.cumsum(dim=1))
        if isinstance(logits_to_keep, int) and logits_to_keep:
            logits = logits[:, -logits_to_keep:]
        elif isinstance(logits_to_keep, torch.Tensor):
            logits = logits[:, logits_to_keep]
        return CausalLMOutput(logits=logits)


@pytest.fixture(scope="module")
def keyword_slm(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = "Which gas do"
    encoded = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    start = text.index("gas")
    keys = [t for t, (a, b) in zip(encoded["input_ids"], encoded["offset_mapping"])
            if a < start + 3 and b > start]
    # The token the model emits for "A" after "The answer is (" (as SLM finds it).
    probe = SLM(KeywordDependentModel(len(tokenizer), keys, 0, mask_token_id(tokenizer)),
                tokenizer, prefix_cache=False, show_progress=False)
    gold = probe.label_token_id("A")
    model = KeywordDependentModel(len(tokenizer), keys, gold, mask_token_id(tokenizer))
    return SLM(model, tokenizer, prefix_cache=False, show_progress=False, batch_size=8)


@pytest.mark.parametrize("method", ATTRIBUTION_METHODS)
def test_the_word_the_answer_depends_on_gets_the_top_attribution(keyword_slm, method):
    budgets = {"kernelshap": {"n_samples": 64}, "lime": {"n_samples": 64},
               "shap_partition": {"max_evals": 64}, "integrated_gradients": {"path_steps": 8}}
    generator = RationaleGenerator(backend=keyword_slm, method=method, k=1,
                                   method_kwargs=budgets.get(method, {}))
    attribution = generator.explainer.attribute(EXAMPLE)  # type: ignore[attr-defined]
    assert attribution.top_k(1) == ["gas"], dict(zip(
        [w.text for w in attribution.words], attribution.scores))
    (explained,) = generator.explain([EXAMPLE])
    assert explained.rationale == "The keyword 'gas' suggests that the answer is (A)."
