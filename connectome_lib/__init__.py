"""connectome_lib: a reproducible companion to Kotar & Tuckute (2025), "Model Connectomes".

Importing the package registers the paper's GPT (:class:`ConnectomeGPTForCausalLM`) with the
transformers ``Auto*`` classes, so ``AutoModelForCausalLM.from_pretrained(folder)`` loads saved
models without ``trust_remote_code``.
"""

import warnings

# transformers and datasets import tqdm.auto; without ipywidgets it warns once in every Jupyter
# kernel. Our progress bars are plain text, so the warning is noise.
warnings.filterwarnings("ignore", message="IProgress not found", module="tqdm")

from .model import ConnectomeGPTConfig, ConnectomeGPTForCausalLM, count_parameters
from .paths import DataMissingError, data_path, resolve_data_dir
from .tokenizer import load_tokenizer

__version__ = "0.1.0"

__all__ = [
    "ConnectomeGPTConfig",
    "ConnectomeGPTForCausalLM",
    "count_parameters",
    "DataMissingError",
    "data_path",
    "resolve_data_dir",
    "load_tokenizer",
]
