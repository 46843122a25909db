"""What the machine is doing: GPU readings via NVML, CPU and memory of the training process.

No UI imports and no torch: the system pane and `tui-nn watch` poll these about once a second.
"""

from tui_nn.system.gpu import GpuReport, GpuStats, NvmlSession, gpu_stats
from tui_nn.system.process import ProcessSampler, ProcessStats, process_stats

__all__ = ["GpuReport", "GpuStats", "NvmlSession", "ProcessSampler", "ProcessStats",
           "gpu_stats", "process_stats"]
