"""The policy engine: templates in, findings out. Pure Python over CloudFormation JSON."""
from .evaluate import Config, Report, evaluate
from .findings import Finding
from .loader import InputError, load

__all__ = ["Config", "Finding", "InputError", "Report", "evaluate", "load"]
