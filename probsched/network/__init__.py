"""Whole models: ONNX import, fusion into tasks, the compiled network (docs/architecture.md)."""

from .compiled import CompiledNetwork
from .network import Network, load_onnx
from .tasks import Step, Task

__all__ = ["CompiledNetwork", "Network", "Step", "Task", "load_onnx"]
