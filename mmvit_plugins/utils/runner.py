"""Helpers for ``tools/train.py`` and ``tools/test.py``.

The two scripts are thin: they parse the command line, turn it into a config with
:func:`prepare_train_cfg` / :func:`prepare_test_cfg`, and hand that to mmengine's ``Runner``.
Everything here works the same for mmdet, mmseg and mmpretrain configs, because the config's
``default_scope`` (and ``custom_imports``) decide which library the Runner builds from; none of
the three is imported here.

On top of what the OpenMMLab tools do, this module fixes three things that break with torch
>= 2.6 and mmengine 0.10.7, or without a GPU:

* **Checkpoints and ``torch.load(weights_only=True)``** (the default since torch 2.6): mmengine
  0.10.7 pickles a few plain objects (``HistoryBuffer``, numpy arrays and scalars) into its
  checkpoints, so ``--resume`` and ``load_from`` fail. :func:`allow_mmengine_checkpoints` allows
  exactly those objects; any other pickled class still fails to load.
* **``--amp`` without CUDA**: mmengine's ``AmpOptimWrapper`` is CUDA-only.
  :class:`CPUBF16AmpOptimWrapper` runs the forward pass under bfloat16 autocast on the CPU.
* **``--launcher pytorch`` without CUDA**: mmengine's ``init_dist`` calls
  ``torch.cuda.set_device``. :func:`init_cpu_dist` starts a ``gloo`` process group first, and
  :class:`CPUDistributedDataParallel` wraps the model without CUDA device ids.

Importing this module (``import mmvit_plugins`` does) registers the two wrapper classes in
mmengine's root ``OPTIM_WRAPPERS`` and ``MODEL_WRAPPERS``, and :class:`DumpSegResults` (what
``tools/test.py --out FILE.pkl`` dumps mmseg predictions with) in its root ``METRICS``, where the
builders of all three libraries find them, so a config with our usual ``custom_imports`` may name
them directly.
"""
import argparse
import gc
import importlib.util
import inspect
import logging
import os
import os.path as osp
import pickle
from contextlib import contextmanager
from copy import deepcopy
from datetime import timedelta
from typing import Optional, Union

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.dist import is_distributed
from mmengine.evaluator import DumpResults
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel
from mmengine.optim import OptimWrapper
from mmengine.registry import METRICS, MODEL_WRAPPERS, OPTIM_WRAPPERS, RUNNERS
from mmengine.hooks import Hook
from mmengine.runner import Runner

from .amp import allow_bfloat16_in_mmcv_ops

__all__ = [
    'CPUBF16AmpOptimWrapper', 'CPUDistributedDataParallel', 'DumpSegResults',
    'ResumeRNGStateHook', 'add_runner_args', 'allow_mmengine_checkpoints', 'build_config_model',
    'build_runner', 'formatted_config_cache',
    'init_cpu_dist', 'load_config', 'parse_runner_args', 'prepare_test_cfg', 'prepare_train_cfg',
    'resolve_config_path', 'run'
]

# The statistics methods that ``HistoryBuffer.__getstate__`` pickles by reference.
_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


# ----------------------------------------------------------------------------------------------
# Checkpoints: torch.load(weights_only=True)
# ----------------------------------------------------------------------------------------------
def _history_buffer_getattr(obj, name: str):
    """Stand-in for ``builtins.getattr`` inside ``weights_only`` unpickling.

    ``torch.save`` pickles with protocol 2, which stores a method such as
    ``HistoryBuffer.min`` as ``getattr(HistoryBuffer, 'min')``. Allowing the real ``getattr``
    would let a crafted file reach any attribute of any allowed object (and from there, code),
    so this function only answers for ``HistoryBuffer``'s statistics methods.

    Args:
        obj: The object the pickle asks an attribute of.
        name (str): The attribute name.

    Returns:
        Callable: ``HistoryBuffer.<name>``.
    """
    from mmengine.logging import HistoryBuffer
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'weights_only load refuses getattr({obj!r}, {name!r}): only the HistoryBuffer '
        f'statistics {_HISTORY_BUFFER_METHODS} are allowed')


def _numpy_safe_globals() -> list:
    """The numpy classes and functions that pickled arrays, dtypes and scalars refer to.

    Files written under numpy 1.x name ``numpy.core.multiarray``, under numpy 2.x
    ``numpy._core.multiarray``; both names are registered.
    """
    import numpy as np
    try:
        multiarray = np._core.multiarray  # numpy >= 2
    except AttributeError:  # pragma: no cover - numpy 1.x
        multiarray = np.core.multiarray
    items = [np.ndarray, np.dtype]
    for func in (multiarray._reconstruct, multiarray.scalar):
        for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
            items.append((func, f'{module}.{func.__name__}'))
    # ``np.dtype('f8')`` is an instance of ``numpy.dtypes.Float64DType``: unpickling rebuilds it
    # and then sets its state, which weights_only allows only for allow-listed types.
    dtypes = getattr(np, 'dtypes', None)  # numpy >= 1.25
    if dtypes is not None:
        items += [
            cls for cls in vars(dtypes).values()
            if isinstance(cls, type) and issubclass(cls, np.dtype)
        ]
    return items


def allow_mmengine_checkpoints() -> None:
    """Let ``torch.load(weights_only=True)`` read the checkpoints mmengine writes.

    Since torch 2.6 ``torch.load`` defaults to ``weights_only=True``, which refuses every class
    it does not know. mmengine 0.10.7 checkpoints hold, besides tensors and builtin containers,
    ``mmengine.logging.HistoryBuffer`` objects (in ``message_hub``) and numpy arrays, dtypes and
    scalars (in ``message_hub`` and ``meta``), so ``--resume`` and ``load_from`` fail.

    This allow-lists exactly those, with ``torch.serialization.add_safe_globals``:
    ``HistoryBuffer``; ``numpy.ndarray``, ``numpy.dtype`` and its ``numpy.dtypes`` classes, and
    numpy's ``_reconstruct`` and ``scalar`` rebuild functions; and, under the name
    ``builtins.getattr`` that protocol-2 pickles use, a getattr that answers only for
    ``HistoryBuffer``'s statistics methods. ``weights_only`` stays on: a file that pickles any
    other class or function still fails to load. Calling it again is harmless.
    """
    from mmengine.logging import HistoryBuffer
    torch.serialization.add_safe_globals([
        HistoryBuffer,
        (_history_buffer_getattr, 'builtins.getattr'),
        *_numpy_safe_globals(),
    ])


# ----------------------------------------------------------------------------------------------
# --amp on the CPU, CPU distributed data parallel
# ----------------------------------------------------------------------------------------------
@OPTIM_WRAPPERS.register_module()
class CPUBF16AmpOptimWrapper(OptimWrapper):
    """Mixed-precision training on the CPU: the forward pass runs under bfloat16 autocast.

    mmengine's ``AmpOptimWrapper`` needs CUDA (or another accelerator); ``tools/train.py
    --amp`` uses this wrapper instead when no GPU is available. bfloat16 has float32's exponent
    range, so no loss scaling is needed: backward and the optimizer step are those of
    :class:`mmengine.optim.OptimWrapper`.

    mmcv's CPU kernels take no bfloat16: building this wrapper makes them compute bfloat16
    arguments in float32 (:func:`~mmvit_plugins.utils.amp.allow_bfloat16_in_mmcv_ops`).

    Args:
        **kwargs: Passed to :class:`mmengine.optim.OptimWrapper`.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        allow_bfloat16_in_mmcv_ops()

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        """Gradient-accumulation context of ``OptimWrapper`` plus bfloat16 CPU autocast.

        Args:
            model (nn.Module): The training model.
        """
        with super().optim_context(model), torch.autocast('cpu', dtype=torch.bfloat16):
            yield

    def load_state_dict(self, state_dict: dict) -> None:
        """Load optimizer state, ignoring the loss scaler of an ``AmpOptimWrapper`` checkpoint.

        Args:
            state_dict (dict): State of the optimizer wrapper.
        """
        state_dict = {k: v for k, v in state_dict.items() if k != 'loss_scaler'}
        super().load_state_dict(state_dict)


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` for a model on the CPU (``gloo`` backend).

    mmengine's Runner hands every DDP wrapper ``device_ids=[LOCAL_RANK]``, which
    ``DistributedDataParallel`` rejects for CPU modules. This wrapper drops them.

    Args:
        module (nn.Module): The model to wrap.
        device_ids (list, optional): Ignored.
        output_device (int, optional): Ignored.
        **kwargs: Passed to :class:`mmengine.model.MMDistributedDataParallel`.
    """

    def __init__(self, module: torch.nn.Module, device_ids=None, output_device=None, **kwargs):
        super().__init__(module=module, **kwargs)


def _use_cpu_dist(cfg: Config) -> bool:
    """Whether the run is a ``--launcher pytorch`` run without CUDA."""
    return cfg.get('launcher', 'none') == 'pytorch' and not torch.cuda.is_available()


def _replace_sync_bn(node) -> bool:
    """Turn every ``type='SyncBN'`` in a (nested) config into ``'BN'``; True if any was."""
    found = False
    if isinstance(node, dict):
        if node.get('type') == 'SyncBN':
            node['type'] = 'BN'
            found = True
        for value in node.values():
            found = _replace_sync_bn(value) or found
    elif isinstance(node, (list, tuple)):
        for value in node:
            found = _replace_sync_bn(value) or found
    return found


def _setup_launcher(cfg: Config, launcher: str) -> None:
    """Set ``cfg.launcher`` and, for a CPU ``pytorch`` launch, the gloo backend and CPU DDP."""
    cfg.launcher = launcher
    if not _use_cpu_dist(cfg):
        return
    env_cfg = cfg.get('env_cfg') or {}
    dist_cfg = env_cfg.get('dist_cfg') or {}
    if dist_cfg.get('backend', 'gloo') != 'gloo':
        print_log(f"No CUDA: distributed backend '{dist_cfg['backend']}' replaced by 'gloo'",
                  logger='current', level=logging.WARNING)
    dist_cfg['backend'] = 'gloo'
    env_cfg['dist_cfg'] = dist_cfg
    cfg.env_cfg = env_cfg
    if _replace_sync_bn(cfg.get('model')):
        print_log("No CUDA: 'SyncBN' layers replaced by 'BN' (torch's SyncBatchNorm syncs "
                  'only CUDA tensors); batch statistics are per process',
                  logger='current', level=logging.WARNING)

    wrapper_cfg = cfg.get('model_wrapper_cfg')
    if wrapper_cfg is None:
        # What the Runner builds when no wrapper is configured, minus the CUDA device ids.
        cfg.model_wrapper_cfg = dict(
            type='CPUDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    elif wrapper_cfg.get('type', 'MMDistributedDataParallel') == 'MMDistributedDataParallel':
        wrapper_cfg['type'] = 'CPUDistributedDataParallel'


def init_cpu_dist(cfg: Config) -> bool:
    """Start the ``gloo`` process group of a CPU ``--launcher pytorch`` run.

    mmengine's ``init_dist`` calls ``torch.cuda.set_device``, which fails without a GPU. When
    the process group already exists, the Runner skips its own initialisation, so calling this
    before building the Runner is enough. Rank, world size and the rendezvous address come
    from the variables torchrun sets (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
    ``MASTER_PORT``); ``env_cfg.dist_cfg.timeout`` (seconds) is honoured.

    Args:
        cfg (Config): A config prepared by :func:`prepare_train_cfg` or :func:`prepare_test_cfg`.

    Returns:
        bool: Whether this call created the process group (the caller then destroys it).

    Raises:
        RuntimeError: If torchrun's variables are missing.
    """
    if not _use_cpu_dist(cfg) or is_distributed():
        return False
    missing = [
        k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT') if k not in os.environ
    ]
    if missing:
        raise RuntimeError(f'--launcher pytorch: {", ".join(missing)} not set; start the run '
                           'with torchrun or tools/dist_train.sh')
    dist_cfg = dict((cfg.get('env_cfg') or {}).get('dist_cfg') or {})
    for key in ('backend', 'init_backend', 'port'):  # mmengine's init_dist arguments
        dist_cfg.pop(key, None)
    if dist_cfg.get('timeout') is not None:
        dist_cfg['timeout'] = timedelta(seconds=dist_cfg['timeout'])
    torch_dist.init_process_group(
        backend='gloo',
        rank=int(os.environ['RANK']),
        world_size=int(os.environ['WORLD_SIZE']),
        **dist_cfg)
    return True


def _setup_amp(cfg: Config) -> None:
    """Switch ``cfg.optim_wrapper`` to mixed precision: CUDA AMP, or bfloat16 on the CPU."""
    optim_wrapper = cfg.optim_wrapper
    if torch.cuda.is_available():
        optim_wrapper.type = 'AmpOptimWrapper'
        optim_wrapper.setdefault('loss_scale', 'dynamic')
        return
    optim_wrapper.type = 'CPUBF16AmpOptimWrapper'
    for key in ('loss_scale', 'dtype', 'use_fsdp'):  # AmpOptimWrapper-only arguments
        optim_wrapper.pop(key, None)
    print_log(
        'No CUDA: mixed precision uses bfloat16 autocast on the CPU '
        "(optim_wrapper.type='CPUBF16AmpOptimWrapper')",
        logger='current',
        level=logging.WARNING)


# ----------------------------------------------------------------------------------------------
# Configs
# ----------------------------------------------------------------------------------------------
def resolve_config_path(config: str) -> str:
    """Turn a config name into a file path.

    Besides plain paths this accepts the package-scoped names OpenMMLab configs use in
    ``_base_``, e.g. ``'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'``, which name a file
    under the installed package's ``.mim/configs`` (the package is located, not imported).

    Args:
        config (str): A path or a ``package::relative/path.py`` name.

    Returns:
        str: The path of the config file.

    Raises:
        FileNotFoundError: If the file (or the package) does not exist.
    """
    if '::' not in config:
        path = config
    else:
        package, rel_path = config.split('::', 1)
        spec = importlib.util.find_spec(package) if package.isidentifier() else None
        if spec is None or spec.origin is None:
            raise FileNotFoundError(
                f'config file not found: {config} (no installed package {package!r})')
        path = osp.join(osp.dirname(spec.origin), '.mim', 'configs', rel_path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {config}')
    return path


def load_config(config: Union[str, Config], cfg_options: Optional[dict] = None) -> Config:
    """Load a config file and merge ``--cfg-options`` into it.

    Args:
        config (str | Config): A path, a package-scoped name such as
            ``'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'`` (see
            :func:`resolve_config_path`), or a loaded config.
        cfg_options (dict, optional): Overrides from ``--cfg-options``. Defaults to None.

    Returns:
        Config: The config.

    Raises:
        FileNotFoundError: If the config file does not exist.
    """
    cfg = config if isinstance(config, Config) else Config.fromfile(resolve_config_path(config))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def build_config_model(cfg: Config, scopes=('mmdet', 'mmseg', 'mmpretrain')):
    """Build ``cfg.model`` in the library its ``default_scope`` names (imported here).

    Args:
        cfg (Config): A loaded config.
        scopes (tuple[str]): The scopes accepted.

    Returns:
        tuple[nn.Module, str]: The model and the scope.

    Raises:
        ValueError: If the config's ``default_scope`` is not one of ``scopes``.
    """
    from mmengine.registry import DefaultScope
    scope = cfg.get('default_scope')
    if scope not in scopes:
        raise ValueError(f'{cfg.filename}: default_scope must be one of {tuple(scopes)}, '
                         f'got {scope!r}')
    importlib.import_module('mmvit_plugins')
    importlib.import_module(f'{scope}.models')
    registry = importlib.import_module(f'{scope}.registry').MODELS
    with DefaultScope.overwrite_default_scope(scope):
        return registry.build(cfg.model), scope


def _set_work_dir(cfg: Config, config: Union[str, Config], work_dir: Optional[str]) -> None:
    """``work_dir`` from the CLI, else the config's, else ``./work_dirs/<config name>``."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        filename = config if isinstance(config, str) else cfg.filename
        name = osp.splitext(osp.basename(filename.split('::')[-1]))[0]
        cfg.work_dir = osp.join('./work_dirs', name)


def _check_checkpoint(path: str, what: Optional[str] = None) -> None:
    """Raise a one-line error for a local checkpoint that will not load (URLs pass unchecked).

    Probes the file with :func:`~mmvit_plugins.utils.checkpoint.check_checkpoint_file`
    (``weights_only``, tensors memory-mapped), before the Runner is built.

    Args:
        path (str): The checkpoint path or URL.
        what (str, optional): Where the path comes from (``'--resume'``, ``'load_from'``, a
            config key), put in front of the message. Defaults to None.

    Raises:
        FileNotFoundError: ``checkpoint not found: PATH``.
        CheckpointError: A ``ValueError``: a directory, an empty file, not a checkpoint,
            truncated, or it pickles something ``weights_only`` refuses (named).
    """
    from .checkpoint import check_checkpoint_file
    try:
        check_checkpoint_file(path)
    except (FileNotFoundError, ValueError) as e:
        if what is None:
            raise
        raise type(e)(f'{what}: {e}') from None


def _pretrained_checkpoints(node, key: str = 'model') -> list:
    """``(config key, checkpoint)`` of every ``Pretrained`` init config in a (nested) config.

    Finds ``init_cfg=dict(type='Pretrained', checkpoint=...)`` at any depth, also inside lists
    of init configs; entries whose checkpoint is None (a placeholder) are left out.
    """
    found = []
    if isinstance(node, dict):
        checkpoint = node.get('checkpoint')
        if _type_name(node) == 'Pretrained' and isinstance(checkpoint, str):
            found.append((f'{key}.checkpoint', checkpoint))
        for name, value in node.items():
            found += _pretrained_checkpoints(value, f'{key}.{name}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            found += _pretrained_checkpoints(value, f'{key}[{i}]')
    return found


def prepare_train_cfg(config: Union[str, Config],
                      work_dir: Optional[str] = None,
                      cfg_options: Optional[dict] = None,
                      amp: bool = False,
                      resume: Optional[str] = None,
                      launcher: str = 'none') -> Config:
    """Build the training config from the arguments of ``tools/train.py``.

    Args:
        config (str | Config): Config path (or package-scoped name, or loaded config).
        work_dir (str, optional): Where logs and checkpoints go. Defaults to the config's
            ``work_dir``, else ``./work_dirs/<config name>``.
        cfg_options (dict, optional): ``--cfg-options`` overrides, merged first.
            Defaults to None.
        amp (bool): Mixed precision: ``AmpOptimWrapper`` with dynamic loss scale when CUDA is
            available, else :class:`CPUBF16AmpOptimWrapper`. A config that already asks for
            ``AmpOptimWrapper`` is switched the same way on a machine without CUDA.
            Defaults to False.
        resume (str, optional): ``'auto'`` resumes from the work dir's ``last_checkpoint``
            (training starts fresh if there is none); a path resumes from that checkpoint.
            Defaults to None (no resume).
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``. Without CUDA,
            ``'pytorch'`` selects the gloo backend and :class:`CPUDistributedDataParallel`.
            Defaults to ``'none'``.

    Returns:
        Config: The config to build the Runner from.

    Raises:
        FileNotFoundError: If the config, or a local checkpoint (to resume from, ``load_from``,
            or of a ``Pretrained`` init config in ``cfg.model``), does not exist.
        CheckpointError: A ``ValueError``, if one of those checkpoints is a directory, empty,
            not a PyTorch checkpoint, truncated, or pickles what ``weights_only`` refuses. They
            are probed here, before anything is built; URLs are left to mmengine.
    """
    cfg = load_config(config, cfg_options)
    _set_work_dir(cfg, config, work_dir)
    _setup_launcher(cfg, launcher)

    optim_wrapper = cfg.get('optim_wrapper')
    if amp or (optim_wrapper is not None and optim_wrapper.get('type') == 'AmpOptimWrapper'
               and not torch.cuda.is_available()):
        if optim_wrapper is None:
            raise ValueError('--amp needs an `optim_wrapper` in the config')
        _setup_amp(cfg)

    if resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif resume is not None:
        _check_checkpoint(resume, '--resume')
        cfg.resume = True
        cfg.load_from = resume
    else:
        load_from = cfg.get('load_from')
        if isinstance(load_from, str):
            _check_checkpoint(load_from, 'load_from')
    for key, checkpoint in _pretrained_checkpoints(cfg.get('model')):
        _check_checkpoint(checkpoint, key)
    return cfg


def _enable_visualization(cfg: Config, show_dir: str) -> None:
    """Make the test loop save painted predictions into ``show_dir``.

    The visualization hooks of the three libraries take different arguments: mmdet's
    ``DetVisualizationHook`` ``draw``/``test_out_dir``, mmpretrain's ``VisualizationHook``
    ``enable``/``out_dir``, mmseg's ``SegVisualizationHook`` ``draw`` plus the visualizer's
    ``save_dir``. The hook class is looked up in the config's scope to tell them apart.
    """
    import inspect

    from mmengine.registry import HOOKS
    hook = (cfg.get('default_hooks') or {}).get('visualization')
    if hook is None:
        raise ValueError('--show-dir needs a `visualization` hook in `default_hooks`')
    hook_cls = hook['type']
    if isinstance(hook_cls, str):
        scope = cfg.get('default_scope')
        name = f'{scope}.{hook_cls}' if scope and '.' not in hook_cls else hook_cls
        hook_cls = HOOKS.get(name)
        if hook_cls is None:
            raise ValueError(f'unknown visualization hook: {name}')
    params = inspect.signature(hook_cls.__init__).parameters
    if 'test_out_dir' in params:  # mmdet
        hook.update(draw=True, test_out_dir=show_dir)
    elif 'out_dir' in params:  # mmpretrain
        hook.update(enable=True, out_dir=show_dir)
    else:  # mmseg: the hook draws, the visualizer's backends save
        hook.update(draw=True)
        cfg.visualizer.save_dir = show_dir


# ----------------------------------------------------------------------------------------------
# tools/test.py: --tta, --out and test_evaluator.format_only
# ----------------------------------------------------------------------------------------------
# The TTA model mmdet's and mmpretrain's tools/test.py add to a config that has none; mmseg's
# tool has no default (its dataset bases define `tta_pipeline`, its default_runtime `tta_model`).
_DEFAULT_TTA_MODELS = {
    'mmdet': dict(
        type='DetTTAModel',
        tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)),
    'mmpretrain': dict(type='AverageClsScoreTTA'),
}
_DUMP_SUFFIXES = ('.pkl', '.pickle')
# --out FILE.pkl: mmdet's tool dumps with DumpDetResults (masks RLE-encoded), mmpretrain's with
# mmengine's DumpResults; mmseg's tool has no pickle output (its --out is a directory of pngs).
_DUMP_METRICS = {'mmdet': 'DumpDetResults', 'mmseg': 'DumpSegResults'}


@METRICS.register_module()
class DumpSegResults(DumpResults):
    """mmengine's ``DumpResults`` for mmseg predictions, less their per-class logits.

    Each mmseg prediction carries ``seg_logits``, a float32 [C, H, W] map at the image's size
    (about 200 MB for a 512x683 ADE20K image with 150 classes) that ``DumpResults`` would hold
    in memory for the whole test set. This metric keeps everything else (``pred_sem_seg``,
    ``gt_sem_seg`` when loaded, the metainfo); ``tools/test.py --out FILE.pkl`` uses it for
    mmseg configs, as mmdet's tool uses ``DumpDetResults``.

    Args:
        out_file_path (str): The ``.pkl`` / ``.pickle`` file to write.
        collect_device (str): As in ``DumpResults``. Defaults to ``'cpu'``.
    """

    def process(self, data_batch, predictions) -> None:
        """Keep the predictions of a batch, without ``seg_logits``.

        Args:
            data_batch: The batch (unused).
            predictions (Sequence[dict]): The model's outputs, as dicts.
        """
        super().process(data_batch,
                        [{k: v for k, v in p.items() if k != 'seg_logits'} for p in predictions])


def _registered_class(registry, cfg: Config, type_):
    """The class a config ``type`` names in ``registry``, in the config's default scope.

    Returns None for a name that is not registered (the Runner reports it when it builds).
    """
    if not isinstance(type_, str):
        return type_
    scope = cfg.get('default_scope')
    name = f'{scope}.{type_}' if scope and '.' not in type_ else type_
    return registry.get(name)


def _init_params(registry, cfg: Config, type_) -> dict:
    """The ``__init__`` parameters of the class ``type_`` names ({} if unknown)."""
    cls = _registered_class(registry, cfg, type_)
    return inspect.signature(cls.__init__).parameters if cls is not None else {}


def _leaf_datasets(dataset) -> list:
    """The dataset configs under dataset wrappers (``dataset=``, ``datasets=[...]``)."""
    if not isinstance(dataset, dict):
        return []
    if 'dataset' in dataset:
        return _leaf_datasets(dataset['dataset'])
    if 'datasets' in dataset:
        return [leaf for d in dataset['datasets'] for leaf in _leaf_datasets(d)]
    return [dataset]


def _type_name(node) -> str:
    """A config's type without scope (``'mmdet.PackDetInputs'`` -> ``'PackDetInputs'``)."""
    type_ = node.get('type', '') if isinstance(node, dict) else ''
    return type_.split('.')[-1] if isinstance(type_, str) else getattr(type_, '__name__', '')


def _is_annotation_loader(transform) -> bool:
    name = _type_name(transform)
    return name.startswith('Load') and name.endswith('Annotations')


def _without_annotations(pipeline: list) -> list:
    """``pipeline`` without its annotation loaders, also inside ``TestTimeAug``."""
    result = []
    for transform in pipeline:
        if _is_annotation_loader(transform):
            continue
        if _type_name(transform) == 'TestTimeAug':
            groups = [[t for t in group if not _is_annotation_loader(t)]
                      for group in transform['transforms']]
            transform = dict(transform, transforms=[group for group in groups if group])
        result.append(transform)
    return result


def _has_key(node, key: str) -> bool:
    """Whether a (nested) config sets ``key`` to something other than None."""
    if isinstance(node, dict):
        return any((k == key and v is not None) or _has_key(v, key) for k, v in node.items())
    if isinstance(node, (list, tuple)):
        return any(_has_key(v, key) for v in node)
    return False


def _flip_tta_pipeline(test_pipeline: list) -> list:
    """The test pipeline with its last step (the packer) run on the image and its flip.

    What mmdet's and mmpretrain's ``tools/test.py --tta`` build for a config without
    ``tta_pipeline``; ``flip`` and ``flip_direction`` are added to the packer's ``meta_keys``
    (mmdet's ``DetTTAModel`` reads them to flip boxes back).
    """
    *steps, pack = deepcopy(list(test_pipeline))
    meta_keys = pack.get('meta_keys')
    if meta_keys is not None:
        pack['meta_keys'] = tuple(meta_keys) + tuple(
            k for k in ('flip', 'flip_direction') if k not in meta_keys)
    flips = [dict(type='RandomFlip', prob=1.), dict(type='RandomFlip', prob=0.)]
    return steps + [dict(type='TestTimeAug', transforms=[flips, [pack]])]


def _setup_tta(cfg: Config) -> None:
    """``--tta``: wrap the model in ``cfg.tta_model`` and test on ``cfg.tta_pipeline``.

    As the libraries' tools do. A config without them gets mmdet's defaults (``DetTTAModel``,
    NMS at IoU 0.5, 100 boxes; the test pipeline plus a horizontal flip) or mmpretrain's
    (``AverageClsScoreTTA``, the same flip); an mmseg config must define them.
    """
    scope = cfg.get('default_scope')
    tta_model = cfg.get('tta_model') or _DEFAULT_TTA_MODELS.get(scope)
    if (scope == 'mmdet' and _type_name(tta_model) == 'DetTTAModel'
            and _has_key(cfg.model, 'mask_head')):
        raise ValueError(
            "--tta: mmdet's DetTTAModel merges boxes only and rejects instance masks, and this "
            'model has a mask head; test it without --tta')
    missing = [key for key in ('tta_model', 'tta_pipeline') if not cfg.get(key)]
    if missing and scope not in _DEFAULT_TTA_MODELS:
        raise ValueError(
            f'--tta needs `{"` and `".join(missing)}` in the config (mmseg configs inherit '
            'them from mmseg::_base_/datasets/*.py and default_runtime.py; see '
            'configs/_base_/ade20k_ms_flip_tta.py for the multi-scale + flip test of the papers)')
    if missing:
        if 'tta_model' in missing:
            cfg.tta_model = deepcopy(_DEFAULT_TTA_MODELS[scope])
        if 'tta_pipeline' in missing:
            cfg.tta_pipeline = _flip_tta_pipeline(
                _leaf_datasets(cfg.test_dataloader.dataset)[0]['pipeline'])
        print_log(
            f'--tta: no `{"`, `".join(missing)}` in the config, using the {scope} defaults: '
            f'{cfg.tta_model.type} on the test pipeline and its horizontal flip',
            logger='current',
            level=logging.WARNING)
    for dataset in _leaf_datasets(cfg.test_dataloader.dataset):
        dataset['pipeline'] = deepcopy(cfg.tta_pipeline)
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)


def _evaluator_metrics(cfg: Config) -> list:
    """The metric configs of ``cfg.test_evaluator``: one, a list, or an Evaluator's."""
    evaluator = cfg.get('test_evaluator')
    if isinstance(evaluator, dict) and 'metrics' in evaluator:
        evaluator = evaluator['metrics']
    if evaluator is None:
        return []
    metrics = list(evaluator) if isinstance(evaluator, (list, tuple)) else [evaluator]
    return [m for m in metrics if isinstance(m, dict)]


def _add_metric(cfg: Config, metric: dict) -> None:
    """Append a metric to ``cfg.test_evaluator`` (made a list where it was one metric)."""
    evaluator = cfg.get('test_evaluator')
    if isinstance(evaluator, dict) and 'metrics' in evaluator:
        metrics = evaluator['metrics']
        metrics = list(metrics) if isinstance(metrics, (list, tuple)) else [metrics]
        evaluator['metrics'] = metrics + [metric]
    elif isinstance(evaluator, (list, tuple)):
        cfg.test_evaluator = list(evaluator) + [metric]
    elif evaluator is None:
        cfg.test_evaluator = [metric]
    else:
        cfg.test_evaluator = [evaluator, metric]


def _setup_format_only(cfg: Config) -> None:
    """Check a ``test_evaluator.format_only=True`` run and let it go without ground truth.

    Test-server output: mmdet's ``CocoMetric`` writes ``<outfile_prefix>.bbox.json`` (and
    ``.segm.json``), mmseg's ``IoUMetric`` / ``CityscapesMetric`` one png per image into
    ``output_dir``; a missing ``outfile_prefix`` / ``output_dir`` is an error here (mmdet would
    assert, mmseg would write nothing). ``CityscapesMetric`` gets ``keep_results=True``, without
    which it refuses ``format_only``. When every metric only formats, nothing reads labels, so
    the test pipeline's annotation loaders and mmseg's ``seg_map_path`` are dropped: the test
    split may have no annotations (mmdet still reads the image list from ``ann_file``, e.g.
    COCO's ``image_info_test-dev2017.json``). The libraries create the output directories.
    """
    metrics = _evaluator_metrics(cfg)
    formatting = [m for m in metrics if m.get('format_only')]
    if not formatting:
        return
    for metric in formatting:
        params = _init_params(METRICS, cfg, metric.get('type'))
        for key, example in (('outfile_prefix', 'DIR/results'), ('output_dir', 'DIR')):
            if key in params and not metric.get(key):
                raise ValueError(
                    f'{_type_name(metric)} with format_only=True needs `{key}` (where the files '
                    f'go), e.g. --cfg-options test_evaluator.format_only=True '
                    f'test_evaluator.{key}={example}')
        if 'keep_results' in params:
            metric['keep_results'] = True
    if len(formatting) < len(metrics):
        return  # another metric still compares with the labels
    for dataset in _leaf_datasets(cfg.test_dataloader.dataset):
        dataset['pipeline'] = _without_annotations(dataset.get('pipeline') or [])
        prefix = dataset.get('data_prefix')
        if isinstance(prefix, dict):
            prefix.pop('seg_map_path', None)
    print_log('test_evaluator.format_only: results are written for a test server, no metric is '
              'computed and no annotations are read', logger='current')


def _setup_out(cfg: Config, out: str) -> Optional[dict]:
    """``--out``: dump the raw predictions to a pickle file (mmseg: or pngs into a directory).

    ``FILE.pkl`` / ``FILE.pickle`` gives the dump metric to append to the test evaluator:
    mmdet's ``DumpDetResults`` for mmdet configs, :class:`DumpSegResults` for mmseg, mmengine's
    ``DumpResults`` otherwise. For an mmseg config, a path without a suffix is what mmseg's
    ``--out`` means: a directory where the segmentation metric also saves its predictions as
    pngs (``output_dir``, ``keep_results``), set here.

    Returns:
        dict | None: The dump metric's config; None for an mmseg directory.

    Raises:
        ValueError: For any other path.
    """
    scope = cfg.get('default_scope')
    suffix = osp.splitext(out)[1]
    if suffix in _DUMP_SUFFIXES:
        return dict(type=_DUMP_METRICS.get(scope, 'DumpResults'), out_file_path=out)
    if scope == 'mmseg' and not suffix:
        targets = [(m, params) for m in _evaluator_metrics(cfg)
                   for params in [_init_params(METRICS, cfg, m.get('type'))]
                   if 'output_dir' in params]
        if not targets:
            raise ValueError(f'--out {out}: no metric of test_evaluator takes `output_dir`')
        for metric, params in targets:
            metric['output_dir'] = out
            if 'keep_results' in params:
                metric['keep_results'] = True
        return None
    also = ' (or, for an mmseg config, a directory without a suffix)' if scope == 'mmseg' else ''
    raise ValueError(f'--out must be a .pkl or .pickle file{also}, got {out}')


def prepare_test_cfg(config: Union[str, Config],
                     checkpoint: str,
                     work_dir: Optional[str] = None,
                     cfg_options: Optional[dict] = None,
                     launcher: str = 'none',
                     show_dir: Optional[str] = None,
                     tta: bool = False,
                     out: Optional[str] = None) -> Config:
    """Build the test config from the arguments of ``tools/test.py``.

    Args:
        config (str | Config): Config path (or package-scoped name, or loaded config).
        checkpoint (str): The checkpoint to test (path or URL).
        work_dir (str, optional): Where the log and metrics go. Defaults as in
            :func:`prepare_train_cfg`.
        cfg_options (dict, optional): ``--cfg-options`` overrides, merged first (so they also
            reach the model inside a TTA wrapper). Defaults to None.
        launcher (str): As in :func:`prepare_train_cfg`. Defaults to ``'none'``.
        show_dir (str, optional): Save painted predictions there. A relative path is taken
            from the current directory (made absolute, for all three libraries alike).
            Defaults to None.
        tta (bool): Test-time augmentation: the model is wrapped in ``cfg.tta_model`` and the
            test set read through ``cfg.tta_pipeline``; mmdet and mmpretrain configs without
            them get their library's flip defaults. Defaults to False.
        out (str, optional): Dump the raw predictions to this ``.pkl`` / ``.pickle`` file
            (for an mmseg config, a path without suffix is a directory for png predictions,
            as mmseg's ``--out``). Defaults to None.

    A ``test_evaluator.format_only=True`` (test-server output) in ``cfg_options`` or the config
    is checked for its output path and drops the annotation loaders (the test split needs no
    labels).

    Returns:
        Config: The config to build the Runner from.

    Raises:
        FileNotFoundError: If the config or the (local) checkpoint does not exist.
        CheckpointError: A ``ValueError``, if the checkpoint is a directory, empty, not a
            PyTorch checkpoint, truncated, or pickles what ``weights_only`` refuses.
        ValueError: For an ``out`` with another suffix, ``tta`` on a config without TTA
            settings (mmseg) or on an mmdet model with masks, and ``format_only`` without an
            output path.
    """
    cfg = load_config(config, cfg_options)
    _set_work_dir(cfg, config, work_dir)
    _setup_launcher(cfg, launcher)
    cfg.load_from = checkpoint
    if show_dir is not None:
        _enable_visualization(cfg, osp.abspath(show_dir))
    loader = cfg.get('test_dataloader')
    if loader and loader.get('num_workers', 1) == 0 and loader.get('persistent_workers'):
        loader.persistent_workers = False  # torch's DataLoader refuses it without workers
    if tta:
        _setup_tta(cfg)
    # --out first (it may set mmseg's output_dir), its dump metric after the format_only check
    dump = _setup_out(cfg, out) if out is not None else None
    _setup_format_only(cfg)  # after _setup_tta: also strips the TTA pipeline
    if dump is not None:
        _add_metric(cfg, dump)
    _check_checkpoint(checkpoint)  # last: the arguments are checked before the file is read
    return cfg


@contextmanager
def formatted_config_cache():
    """Within the block, mmengine formats a config's text (with yapf) once, not at every use.

    ``Config.pretty_text`` runs yapf over the whole config each time it is read, and a Runner
    reads it five times for the same config (the log, the dump into the work dir, the
    visualiser's backends); for a detector's config that is about 1.2 s of one CPU core each,
    most of a short run's start. Here the formatter mmengine calls answers a text it formatted
    before, with the same style, from a cache; any other text is formatted as usual.
    """
    from mmengine.config import config as config_module
    original = config_module.FormatCode
    cache = {}

    def format_code(text, *args, **kwargs):
        key = (text, repr(args), repr(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = original(text, *args, **kwargs)
        return cache[key]

    config_module.FormatCode = format_code
    try:
        yield
    finally:
        config_module.FormatCode = original


def build_runner(cfg: Config) -> Runner:
    """Build the Runner: ``cfg.runner_type`` from the registry if set, else mmengine's.

    Registers :class:`ResumeRNGStateHook` (an exact ``--resume``) for every run, and
    :class:`PlainParamGroupsHook` when ``cfg.compile`` is set.

    Args:
        cfg (Config): A prepared config.

    Returns:
        Runner: The runner.
    """
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    runner.register_hook(ResumeRNGStateHook(), priority='VERY_HIGH')
    if cfg.get('compile'):
        runner.register_hook(PlainParamGroupsHook(), priority='VERY_HIGH')
    return runner


class PlainParamGroupsHook(Hook):
    """Makes ``compile=True`` train: turns the optimiser's parameter groups into plain dicts.

    With a ``paramwise_cfg``, mmengine's optimiser constructor makes every parameter group a
    ``ConfigDict``. mmengine's ``compile=True`` compiles the whole ``train_step``, optimiser
    step included, and dynamo cannot trace ``ConfigDict.items()`` inside ``optimizer.step``
    (``InternalTorchDynamoError: 'UserDefinedDictVariable' object has no attribute 'items'``).
    Before training, after the parameter schedulers have stored their initial values in the
    groups, each group is replaced by a ``dict`` with the same entries; the optimiser state
    (keyed by parameter) and the schedulers (which look the groups up at every step) are
    unaffected. :func:`build_runner` adds it when ``cfg.compile`` is set.

    It also keeps the optimiser step out of the compiled graph (``torch._dynamo.disable``: a
    graph break before it, the step eager, as without ``compile``). Traced, the step guards on
    each group's float ``lr``, so every iteration of a warm-up or decay schedule recompiled it,
    until dynamo's recompile limit: two iterations of the tests' compiled ELSA-Swin UperNet
    (tests/test_compile.py) took 95 s, 31 s with the step eager.
    """

    def before_train(self, runner) -> None:
        wrappers = runner.optim_wrapper
        wrappers = wrappers.values() if hasattr(wrappers, 'values') else [wrappers]
        for wrapper in wrappers:
            groups = wrapper.optimizer.param_groups
            groups[:] = [dict(g) for g in groups]
            wrapper.optimizer.step = torch._dynamo.disable(wrapper.optimizer.step)


class _RestoreAfterSkip:
    """The iterator of an ``IterBasedTrainLoop`` that calls ``restore`` after ``skip`` batches.

    On resume, the loop first reads the ``skip`` batches the checkpoint has already trained
    (replaying the sampler and the data-loader workers) and then the next one; ``restore`` runs
    in between, where the uninterrupted run saved the checkpoint.
    """

    def __init__(self, iterator, skip: int, restore):
        self.iterator = iterator
        self._left = skip
        self._restore = restore

    def __iter__(self):
        return self

    def __next__(self):
        batch = next(self.iterator)
        self._left -= 1
        if self._left == 0:
            self._restore()
        return batch


class ResumeRNGStateHook(Hook):
    """Makes ``--resume`` continue the random number streams of an uninterrupted run.

    mmengine's resume restores the model, the optimiser, the parameter schedulers, the message
    hub and the seed, and its ``IterBasedTrainLoop`` reads the already trained batches again
    (which replays the sampler and the augmentations of the data-loader workers). The global
    generators of the training process (torch's CPU and CUDA ones, numpy's, Python's
    ``random``) start again from the seed, though: dropout masks, mmdet's box samplers and,
    with ``num_workers=0``, the augmentations differ after a resume from those of a run that
    was not interrupted.

    This hook saves those states in every checkpoint, as ``checkpoint['rng_state']`` (tensors,
    numbers, strings and tuples: ``torch.load(weights_only=True)`` reads them without
    allow-list entries), and restores them when a run resumes from it, at the point of the loop
    where they were saved: in an ``IterBasedTrainLoop`` after the skipped batches and before the
    next one, in an epoch-based loop at the start of the resumed epoch. A validation runs between a
    save and a restore of the training states, so the training streams do not depend on when
    it runs (a resumed run does not repeat the validation at its checkpoint's iteration).
    ``load_from`` (training from a checkpoint's weights) restores nothing.

    Not restored: multi-process runs (mmengine writes the checkpoint on rank 0 only, and the
    other ranks' states differ), with a warning. mmengine's ``EpochBasedTrainLoop`` resumed
    from a checkpoint in the middle of an epoch trains that epoch again from its first batch;
    the hook warns about it. :func:`build_runner` registers the hook for every run.
    """

    def __init__(self) -> None:
        self._loaded = None  # (iteration, states) of the checkpoint loaded last
        self._at_epoch_start = None  # states to restore at the start of the resumed epoch
        self._training_states = None  # the training states while a validation runs

    @staticmethod
    def get_states() -> dict:
        """The states of torch's, numpy's and Python's global generators, as plain objects."""
        import random

        import numpy as np
        name, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
        states = dict(
            torch=torch.get_rng_state(),
            numpy=(str(name), torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                   float(cached_gaussian)),
            random=random.getstate())
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            states['cuda'] = torch.cuda.get_rng_state_all()
        return states

    @staticmethod
    def set_states(states: dict) -> None:
        """Restore what :meth:`get_states` returned."""
        import random

        import numpy as np
        torch.set_rng_state(states['torch'].cpu())
        name, keys, pos, has_gauss, cached_gaussian = states['numpy']
        np.random.set_state(
            (name, keys.cpu().numpy().astype(np.uint32), pos, has_gauss, cached_gaussian))
        random.setstate(states['random'])
        cuda = states.get('cuda')
        if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([state.cpu() for state in cuda])

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        states = self._training_states or self.get_states()  # a best checkpoint: before val
        checkpoint['rng_state'] = dict(states, world_size=runner.world_size)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        states = checkpoint.get('rng_state')
        iteration = (checkpoint.get('meta') or {}).get('iter')
        self._loaded = (iteration, states) if isinstance(states, dict) else None

    def before_train(self, runner) -> None:
        loaded, self._loaded = self._loaded, None
        if loaded is None or runner.iter == 0 or loaded[0] != runner.iter:
            return  # a fresh run, load_from, or a checkpoint of an older version
        states = loaded[1]
        if runner.world_size != 1 or states.get('world_size', 1) != 1:
            print_log('Resume: the random number states of the checkpoint are not restored in '
                      'a multi-process run (mmengine saves rank 0 only); training continues '
                      'from the seed', logger='current', level=logging.WARNING)
            return
        loop = runner.train_loop
        if getattr(loop, 'dataloader_iterator', None) is not None:  # IterBasedTrainLoop
            loop.dataloader_iterator = _RestoreAfterSkip(
                loop.dataloader_iterator, runner.iter, lambda: self.set_states(states))
            return
        self._at_epoch_start = states
        done = runner.iter - runner.epoch * len(loop.dataloader)  # of the resumed epoch
        if done:
            print_log(f'Resume: iteration {runner.iter} is {done} iterations into epoch '
                      f'{runner.epoch + 1}, and mmengine trains that epoch again from its first '
                      f'batch ({done} iterations more than a run without the resume); save '
                      'checkpoints at the ends of epochs (checkpoint by_epoch=True) to resume '
                      'exactly', logger='current', level=logging.WARNING)

    def before_train_epoch(self, runner) -> None:
        if self._at_epoch_start is not None:
            self.set_states(self._at_epoch_start)
            self._at_epoch_start = None

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        loop = runner.train_loop
        iterator = getattr(loop, 'dataloader_iterator', None)
        if isinstance(iterator, _RestoreAfterSkip):
            loop.dataloader_iterator = iterator.iterator

    def before_val(self, runner) -> None:
        self._training_states = self.get_states()

    def after_val(self, runner) -> None:
        if self._training_states is not None:
            self.set_states(self._training_states)
            self._training_states = None


def run(cfg: Config, mode: str) -> None:
    """Build the Runner from a prepared config and train or test with it.

    Allows mmengine's checkpoints under ``weights_only`` (for ``--resume``, ``load_from`` and
    the checkpoint under test), starts the gloo process group of a CPU ``--launcher pytorch``
    run, and tears it down at the end.

    Args:
        cfg (Config): A config from :func:`prepare_train_cfg` or :func:`prepare_test_cfg`.
        mode (str): ``'train'`` or ``'test'``.
    """
    if mode not in ('train', 'test'):
        raise ValueError(f"mode must be 'train' or 'test', got {mode!r}")
    allow_mmengine_checkpoints()
    own_process_group = init_cpu_dist(cfg)
    with formatted_config_cache():
        runner = build_runner(cfg)
        getattr(runner, mode)()
    if own_process_group:
        # Release the runner (and its DDP wrapper, which holds the process group) before the
        # group goes: a wrapper destroyed after it can abort the process at exit. The barrier
        # keeps any rank from tearing gloo down while another still talks to it.
        del runner
        gc.collect()
        torch_dist.barrier()
        torch_dist.destroy_process_group()


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------
def add_runner_args(parser: argparse.ArgumentParser, cfg_options_example: str) -> None:
    """Add the arguments ``tools/train.py`` and ``tools/test.py`` share.

    ``--cfg-options``, ``--launcher`` and ``--local-rank``/``--local_rank`` (passed by
    ``torch.distributed.launch``; the scripts copy it to ``LOCAL_RANK``).

    Args:
        parser (argparse.ArgumentParser): The parser to extend.
        cfg_options_example (str): Example overrides shown in ``--cfg-options``' help.
    """
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help=f'override settings of the config, as key=value pairs (e.g. {cfg_options_example}'
        '); a list is key="[a,b]" or key=a,b, nested lists/tuples key="[(a,b),(c,d)]", '
        'quotes needed, no spaces')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_runner_args(parser: argparse.ArgumentParser,
                      argv: Optional[list] = None) -> argparse.Namespace:
    """Parse the command line of a tool built with :func:`add_runner_args`.

    Also copies ``--local-rank`` to ``LOCAL_RANK`` (unless set), as the OpenMMLab tools do.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
        argv (list[str], optional): Arguments; defaults to ``sys.argv[1:]``.

    Returns:
        argparse.Namespace: The arguments.
    """
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args
