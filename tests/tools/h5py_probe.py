#!/usr/bin/env python3
"""Prints, as JSON, what h5py sees in an HDF5 output: used by tests/tools.rs.

usage: h5py_probe.py FILE DATASET REFERENCE.tif
Whether every pixel equals the reference TIFF's (NaN equal to NaN), the layout, and, for a
contiguous dataset, whether numpy.memmap at the offset h5py reports reads the same pixels.
"""
import json
import sys

import h5py
import numpy as np
import tifffile

path, name, reference = sys.argv[1:4]
expected = tifffile.imread(reference)
with h5py.File(path, "r") as f:
    ds = f[name]
    data = ds[()]
    offset = ds.id.get_offset()
    report = {
        "shape": list(ds.shape),
        "dtype": str(ds.dtype),
        "chunks": list(ds.chunks) if ds.chunks else None,
        "compression": ds.compression,
        "equal": bool(np.array_equal(data, expected, equal_nan=True)),
        "history": "imfilter_history" in ds.attrs,
        "offset": offset,
    }
    dtype, shape = ds.dtype, ds.shape
if offset is not None:
    mapped = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
    report["memmap_equal"] = bool(np.array_equal(mapped, expected, equal_nan=True))
print(json.dumps(report))
