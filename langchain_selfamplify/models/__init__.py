"""Model backends: the protocol every step depends on, the local Hugging Face backend
(:class:`SLM`), a served model over an OpenAI-compatible endpoint, and a generation-only
backend over any LangChain chat model, and a local model whose generation is
offloaded to a served copy."""

from langchain_selfamplify.models.backend import Capabilities, ModelBackend, require_local
from langchain_selfamplify.models.chat_backend import ChatModelBackend
from langchain_selfamplify.models.chat_format import ChatPrompt, Prompt
from langchain_selfamplify.models.choice_scores import ChoiceScores
from langchain_selfamplify.models.core import ModelCore
from langchain_selfamplify.models.embedded import DEFAULT_MODEL_NAME, default_model_path
from langchain_selfamplify.models.factory import load_backend
from langchain_selfamplify.models.offload import GenerationOffload
from langchain_selfamplify.models.served import OpenAICompatibleBackend
from langchain_selfamplify.models.slm import SLM
from langchain_selfamplify.wording import ANSWER_PREFIX

__all__ = [
    "ANSWER_PREFIX",
    "DEFAULT_MODEL_NAME",
    "SLM",
    "Capabilities",
    "ChatModelBackend",
    "ChatPrompt",
    "ChoiceScores",
    "GenerationOffload",
    "ModelBackend",
    "ModelCore",
    "OpenAICompatibleBackend",
    "Prompt",
    "default_model_path",
    "load_backend",
    "require_local",
]
