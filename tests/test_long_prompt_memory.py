"""Long prompts on a model with a 150k-word vocabulary stay within a stated peak memory.

On Qwen2.5-Coder-1.5B, an 8-shot prompt of ~2,200 tokens with 32 long test questions
once took 19.3 GiB in the first prompt encoding (the prefix's keys and values repeated
for every row at once), and a scoring pass asked for 29.9 GB (every position projected
to the vocabulary). Here a small random model with Qwen's vocabulary answers such a
batch (8 demonstrations, prompts of ~4,100 tokens) in a fresh process, whose peak
resident memory must stay under :data:`PEAK_RSS_LIMIT_MIB` (measured: about 860 MiB).
Projecting every position of the batch to the 151,936 words in float32 would alone
take tens of GB.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PEAK_RSS_LIMIT_MIB = 2048
"""The stated bound: torch, the model (~0.35 GB) and the batch's work."""

SCRIPT = r"""
import json, sys
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM
from langchain_selfamplify import SLM, AmplifiedPrompt, MCQExample
from langchain_selfamplify.evaluation.predict import answer_questions

tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
config = LlamaConfig(vocab_size=151_936, hidden_size=256, intermediate_size=512,
                     num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=2,
                     max_position_embeddings=8192, pad_token_id=tokenizer.pad_token_id,
                     eos_token_id=tokenizer.eos_token_id)
torch.manual_seed(0)
model = LlamaForCausalLM(config)
slm = SLM(model, tokenizer, show_progress=False, batch_size=32, decode_slots=32)
long = "Which of these statements about plants and rocks is true and why? " * 12
demos = [MCQExample(id=f"d{i}", question=long, choices={"A": "a tree", "B": "a rock"},
                    answer="A").with_rationale("Step 1: " + "trees grow and rocks do not. " * 8)
         for i in range(8)]
questions = [MCQExample(id=f"q{i}", question=long * 2 + f" Case {i}?",
                        choices={"A": "alive", "B": "not alive"}, answer="A")
             for i in range(32)]
prompt = AmplifiedPrompt(examples=demos)
text = slm.format_prompt(prompt.to_messages(questions[0]))
answers = answer_questions(slm, prompt, questions, max_rationale_tokens=4)
# VmHWM is this process's own peak; ru_maxrss would also count the parent's memory
# that the child shared before exec (the whole test session's, when run in the suite).
peak_kib = next(int(line.split()[1]) for line in open("/proc/self/status")
                if line.startswith("VmHWM:"))
print(json.dumps({"prompt_tokens": slm.count_tokens(text), "answered": len(answers),
                  "peak_rss_mib": peak_kib / 1024}))
"""


def test_a_long_eight_shot_batch_stays_within_the_stated_peak_memory(tiny_model_dir: Path):
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tiny_model_dir)],
                            capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["answered"] == 32
    assert report["prompt_tokens"] > 2000  # as long as the prompts that blew up
    assert report["peak_rss_mib"] < PEAK_RSS_LIMIT_MIB, report
