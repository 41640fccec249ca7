"""Utilities shared by the training and testing tools (``tools/train.py``, ``tools/test.py``)."""
from .amp import allow_bfloat16_in_mmcv_ops
from .checkpoint import (CheckpointError, check_checkpoint_file, is_local_checkpoint,
                         load_checkpoint_file)
from .config_index import index_external_configs
from .data_check import check_data, missing_data_paths
from .flops import FLOP_HANDLES, count_flops, countable_ops, flop_handles
from .runner import (CPUBF16AmpOptimWrapper, CPUDistributedDataParallel, ResumeRNGStateHook,
                     add_runner_args,
                     allow_mmengine_checkpoints, build_runner, formatted_config_cache,
                     init_cpu_dist, load_config,
                     parse_runner_args, prepare_test_cfg, prepare_train_cfg,
                     resolve_config_path, run)

__all__ = [
    'CPUBF16AmpOptimWrapper', 'CPUDistributedDataParallel', 'ResumeRNGStateHook',
    'add_runner_args', 'allow_bfloat16_in_mmcv_ops',
    'CheckpointError', 'check_checkpoint_file', 'is_local_checkpoint', 'load_checkpoint_file',
    'allow_mmengine_checkpoints', 'build_runner', 'check_data', 'formatted_config_cache',
    'index_external_configs',
    'init_cpu_dist', 'load_config',
    'missing_data_paths', 'parse_runner_args', 'prepare_test_cfg', 'prepare_train_cfg',
    'resolve_config_path', 'run',
    'FLOP_HANDLES', 'count_flops', 'countable_ops', 'flop_handles'
]
