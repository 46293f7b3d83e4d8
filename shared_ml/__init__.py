"""shared_ml: the scikit-learn pipeline every orchestrator runs. Imports no orchestrator."""

from shared_ml.config import PipelineConfig, load_config
from shared_ml.execution import execute_step
from shared_ml.spec import PIPELINE

__all__ = ["PIPELINE", "PipelineConfig", "execute_step", "load_config"]
