"""The weights of a TorchScript archive, read without TorchScript.

OpenAI releases CLIP as TorchScript archives. ``torch.jit.load`` reads them, but it is
deprecated (PyTorch 2.14 warns that it "may break" on Python 3.14 and later), it compiles the
archive's code to hand back weights, and the engine uses nothing but the weights. They are a
pickle of the module tree (``<archive>/data.pkl``) whose tensors point into raw storages
(``<archive>/data/<key>``). ``read_tensors`` unpickles that tree with an unpickler that makes
tensors and plain records of modules and nothing else, so nothing in the file runs.
"""
from __future__ import annotations

import collections
import pickle
import zipfile

import torch

# the storage classes a TorchScript archive names, and the dtype of their elements
_STORAGE_DTYPES = {
    "HalfStorage": torch.float16, "FloatStorage": torch.float32, "DoubleStorage": torch.float64,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


class UnknownContent(pickle.UnpicklingError):
    """The archive's pickle names something other than modules, tensors and plain values."""


def is_torchscript(path: str) -> bool:
    """Is ``path`` a TorchScript archive (a zip with ``constants.pkl``, unlike ``torch.save``'s)?"""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def read_tensors(path: str) -> dict[str, torch.Tensor]:
    """Every parameter and buffer of the archive's module tree, by its dotted name (the keys
    ``torch.jit.load(path).state_dict()`` gives), as CPU tensors in the file's dtype."""
    with zipfile.ZipFile(path) as archive:
        pickled = next(n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1)
        root = pickled[: -len("data.pkl")]
        order = root + "byteorder"
        if order in archive.namelist() and archive.read(order).strip() != b"little":
            raise UnknownContent("a big-endian archive")
        module = _ModuleTreeUnpickler(archive, root).load()
    return dict(_named_tensors(module))


class _Module:
    """A module of the archive: its attributes (submodules, tensors, plain values), no code."""


def _tensor(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    """``torch._utils._rebuild_tensor_v2``'s arguments: a view of the element array."""
    return storage.as_strided(tuple(size), tuple(stride), offset)


def _same(value, *_):
    """``torch.jit._pickle``'s typed-list builders and type tags: the value itself."""
    return value


_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"): _tensor,
    ("collections", "OrderedDict"): collections.OrderedDict,
    **{("torch.jit._pickle", name): _same for name in
       ("build_intlist", "build_doublelist", "build_boollist", "build_tensorlist", "restore_type_tag")},
}


class _ModuleTreeUnpickler(pickle.Unpickler):
    def __init__(self, archive: zipfile.ZipFile, root: str):
        super().__init__(archive.open(root + "data.pkl"))
        self.archive, self.root, self.storages = archive, root, {}

    def find_class(self, module: str, name: str):
        if module.startswith("__torch__"):
            return _Module
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if (module, name) in _GLOBALS:
            return _GLOBALS[(module, name)]
        raise UnknownContent(f"{module}.{name}")

    def persistent_load(self, pid):
        """``('storage', dtype, key, location, numel)``: the elements of ``data/<key>``."""
        kind, dtype, key, _location, _numel = pid
        if kind != "storage" or not isinstance(dtype, torch.dtype):
            raise UnknownContent(f"persistent id {kind!r}")
        if key not in self.storages:
            raw = bytearray(self.archive.read(f"{self.root}data/{key}"))
            self.storages[key] = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        return self.storages[key]


def _named_tensors(module: _Module, prefix: str = ""):
    for name, value in vars(module).items():
        if isinstance(value, torch.Tensor):
            yield prefix + name, value
        elif isinstance(value, _Module):
            yield from _named_tensors(value, f"{prefix}{name}.")
